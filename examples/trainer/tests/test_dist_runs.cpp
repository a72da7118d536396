// The distributed trainer run as a user runs it and loses it (ctest entry trainer_distributed,
// docs/distributed.md): the binary on 2 processes on 127.0.0.1, started by `launch` or by hand
// with torchrun's variables; a rank killed and the run resumed; starts that are refused by name.
// Rendezvous ports come from a c10d store on port 0 (the OS picks).
#include "trainer/tests/dist_helpers.hpp"

#include <chrono>
#include <csignal>
#include <thread>

using namespace trainer_tests;
using namespace trainer_tests::distributed;

TEST_CASE("kill -9 of rank 1: rank 0 stops naming it within --dist-timeout, and 2 processes resume the checkpoint",
          "[distributed]") {
  TempDir dir("dist_kill");
  const fs::path run = dir.path / "run", straight = dir.path / "straight";
  const std::vector<std::string> common = {
      "--steps", "40", "--log-every", "1", "--sample-every", "1000", "--checkpoint-every", "5", "--dist-timeout", "20"};
  auto args = tiny(common);
  args.insert(args.end(), {"--run", run.string()});
  const auto ranks = spawn_ranks(args, dir.path / "run.out");
  const auto start = clock_type::now();
  while (last_printed_step(dir.path / "run.out0") < 12 && seconds_since(start) < 120)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(last_printed_step(dir.path / "run.out0") >= 12);
  ::kill(ranks.pid(1), SIGKILL);
  const auto killed = clock_type::now();
  CHECK(wait_exit(ranks.pid(1)) == -SIGKILL);
  const int code = wait_exit(ranks.pid(0), 120);
  const double took = seconds_since(killed);
  const auto out0 = read_text(dir.path / "run.out0");
  INFO(out0);
  CHECK(code != 0);
  CHECK_THAT(out0, Catch::Contains("lost rank(s) 1"));
  CHECK(took < 20);
  fmt::print("kill -9 of rank 1 at step {}: rank 0 exited {} after {:.1f} s\n",
             last_printed_step(dir.path / "run.out0"), code, took);
  // No torn checkpoint: the last one loads completely.
  CHECK_FALSE(fs::exists(run / "ckpt.safetensors.tmp"));
  const int64_t saved = loadable_checkpoint_step(run / "ckpt.safetensors");
  CHECK(saved >= 10);
  CHECK(saved % 5 == 0);

  // 2 processes --resume to the end, and equal an uninterrupted 2-process run bit for bit.
  auto resumed = args;
  resumed.push_back("--resume");
  require_success(spawn_ranks(resumed, dir.path / "resume.out"));
  CHECK_THAT(read_text(dir.path / "resume.out0"), Catch::Contains(fmt::format("at step {}", saved)));
  auto ref = tiny(common);
  ref.insert(ref.end(), {"--run", straight.string()});
  require_success(spawn_ranks(ref, dir.path / "straight.out"));
  auto a = load(straight / "ckpt.safetensors"), b = load(run / "ckpt.safetensors");
  REQUIRE(b->step() == 40);
  CHECK(same_state(*a->G, *b->G));
  CHECK(same_state(*a->D, *b->D));
  CHECK(same_state(*a->F.module, *b->F.module));
  CHECK(report::read_log(run / "log.jsonl").size() == 40);
}

TEST_CASE("Bad torchrun variables, an unreachable master and ranks with different options are refused by name",
          "[distributed]") {
  TempDir dir("dist_bad");
  int index = 0;
  // One rank with `env`; it must fail within `timeout_s`, printing every phrase, training nothing.
  auto refused = [&](const std::vector<std::string>& env, const std::vector<std::string>& phrases,
                     const std::vector<std::string>& extra = {}, double timeout_s = 60) {
    const fs::path run = dir.path / fmt::format("run{}", index), out = dir.path / fmt::format("out{}", index);
    ++index;
    auto args = tiny({"--steps", "2", "--run", run.string()});
    args.insert(args.end(), extra.begin(), extra.end());
    const auto start = clock_type::now();
    const int code = wait_exit(spawn(args, env, out), timeout_s + 30);
    const auto text = read_text(out);
    INFO(text);
    CHECK(code != 0);
    CHECK(seconds_since(start) < timeout_s);
    for (const auto& p : phrases) CHECK_THAT(text, Catch::Contains(p));
    CHECK_FALSE(fs::exists(run / "ckpt.safetensors"));
  };
  for (const auto& c : refused_torchrun_env()) refused(c.env, {c.phrase});
  refused({"RANK=0", "WORLD_SIZE=1", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1"}, {"--dist-timeout must be at least 1"},
          {"--dist-timeout", "0"});
  // Rank 0 alone: its group never forms, and it stops within the timeout (plus the watchdog's 5 s).
  refused({"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", fmt::format("MASTER_PORT={}", free_port())},
          {"rank 0: the process group of 2 ranks did not form within"}, {"--dist-timeout", "3"}, 15);
  const int closed = free_port();
  refused({"RANK=1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", fmt::format("MASTER_PORT={}", closed)},
          {fmt::format("cannot reach the master at 127.0.0.1:{} within --dist-timeout 3 s", closed)},
          {"--dist-timeout", "3"}, 30);

  // Different options: both ranks stop, naming rank 1, before anything is written.
  const auto mixed = spawn_ranks(
      [&](int r) {
        return tiny({"--steps", "2", "--run", (dir.path / "mixed").string(), "--lr", r == 0 ? "0.0002" : "0.0003"});
      },
      dir.path / "mixed");
  for (int r = 0; r < 2; ++r) {
    CHECK(wait_exit(mixed.pid(r), 60) != 0);
    INFO(mixed.output(r));
    CHECK_THAT(mixed.output(r), Catch::Contains("started with different options: rank(s) 1 differ from rank 0"));
  }
  CHECK_FALSE(fs::exists(dir.path / "mixed" / "log.jsonl"));
}

TEST_CASE("launch --nproc-per-node 2 -- train ... leaves one run folder, and so does the same run started by hand",
          "[distributed]") {
  TempDir dir("dist_launch");
  const std::vector<std::string> command = {"train", "--steps", "20", "--synthetic-size", "32", "--ngf",
                                            "8",     "--ndf",   "8",  "--n-blocks",       "1"};
  const fs::path launched = dir.path / "launched", by_hand = dir.path / "by_hand";
  fs::create_directories(launched);
  fs::create_directories(by_hand);
  std::vector<std::string> args = {"launch", "--nproc-per-node", "2", "--"};
  args.insert(args.end(), command.begin(), command.end());
  const int code = wait_exit(spawn(args, {}, dir.path / "launch.out", launched));
  INFO(read_text(dir.path / "launch.out"));
  REQUIRE(code == 0);
  require_success(spawn_ranks(command, dir.path / "by_hand.out", by_hand));
  for (const auto& cwd : {launched, by_hand}) {
    INFO(cwd.string());
    std::vector<fs::path> entries, runs;
    for (const auto& e : fs::directory_iterator(cwd)) entries.push_back(e.path());
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].filename() == "runs");
    for (const auto& e : fs::directory_iterator(cwd / "runs")) runs.push_back(e.path());
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].filename() == "demo");
    for (const char* f : {"ckpt.safetensors", "log.jsonl", "index.html", "config.txt"}) CHECK(fs::exists(runs[0] / f));
    CHECK(loadable_checkpoint_step(runs[0] / "ckpt.safetensors") == 20);
  }
  // Both ways run the same computation.
  auto a = load(launched / "runs" / "demo" / "ckpt.safetensors"),
       b = load(by_hand / "runs" / "demo" / "ckpt.safetensors");
  CHECK(same_state(*a->G, *b->G));
  CHECK(same_state(*a->F.module, *b->F.module));
}

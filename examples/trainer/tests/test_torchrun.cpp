// The trainer under torchrun itself (`--no_python`): 2 processes with the standalone and with the
// static rendezvous, and a worker killed with SIGKILL under `--max_restarts 1`, after which the
// restarted workers continue the run folder's checkpoint (--auto-resume) and end where an
// uninterrupted run ends, bit for bit. The flags are those every torchrun accepts: the underscore
// spellings (1.13 knows no others) and `-r 1 -t 1 --log_dir DIR`, without which 1.13 on Python 3.11
// stops before starting a worker. Skipped, saying so, where no torchrun is on PATH.
#include "trainer/tests/dist_helpers.hpp"

using namespace trainer_tests;
using namespace trainer_tests::distributed;

TEST_CASE("torchrun --standalone and a static rendezvous each train 2 processes to the end",
          "[distributed][torchrun]") {
  if (const auto why = why_no_torchrun(); !why.empty()) {
    WARN("torchrun tests skipped: " << why);
    return;
  }
  TempDir dir("torchrun");
  const std::vector<std::vector<std::string>> rendezvous = {
      {"--standalone"},
      {"--nnodes", "1", "--node_rank", "0", "--master_addr", "127.0.0.1", "--master_port",
       std::to_string(free_port())}};
  for (size_t i = 0; i < rendezvous.size(); ++i) {
    const fs::path run = dir.path / fmt::format("run{}", i), out = dir.path / fmt::format("out{}", i);
    const auto args = tiny({"--steps", "6", "--dist-timeout", "60", "--run", run.string()});
    const int code =
        wait_exit(spawn(args, {}, out, {}, torchrun(dir.path / fmt::format("logs{}", i), rendezvous[i])), 300);
    INFO(fmt::format("{}\n{}", fmt::join(rendezvous[i], " "), read_text(out)));
    CHECK(code == 0);
    CHECK(loadable_checkpoint_step(run / "ckpt.safetensors") == 6);
    const auto log = report::read_log(run / "log.jsonl");
    CHECK((!log.empty() && log.back().at("world_size") == 2));
  }
}

TEST_CASE(
    "torchrun --max_restarts 1 after a worker's kill -9: the restarted workers --auto-resume to the uninterrupted "
    "run's final state",
    "[distributed][torchrun]") {
  if (const auto why = why_no_torchrun(); !why.empty()) {
    WARN("torchrun tests skipped: " << why);
    return;
  }
  TempDir dir("torchrun_restart");
  const fs::path run = dir.path / "run", straight = dir.path / "straight";
  const std::vector<std::string> common = {"--steps",        "30",   "--log-every",        "1",
                                           "--sample-every", "1000", "--checkpoint-every", "5",
                                           "--dist-timeout", "20",   "--auto-resume"};
  auto args = tiny(common);
  args.insert(args.end(), {"--run", run.string()});
  const pid_t agent =
      spawn(args, {}, dir.path / "run.out", {}, torchrun(dir.path / "logs", {"--standalone", "--max_restarts", "1"}));
  const auto start = clock_type::now();
  while (last_printed_step(dir.path / "run.out") < 12) {
    INFO(read_text(dir.path / "run.out"));
    REQUIRE(seconds_since(start) < 180);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto workers = trainer_children(agent);
  REQUIRE(workers.size() == 2);
  REQUIRE(::kill(workers[1], SIGKILL) == 0);
  const int code = wait_exit(agent, 300);
  const auto output = read_text(dir.path / "run.out");
  INFO(output);
  REQUIRE(code == 0);
  CHECK_THAT(output, Catch::Contains("resumed"));  // the restarted workers continued the checkpoint

  auto ref = tiny(common);
  ref.insert(ref.end(), {"--run", straight.string()});
  REQUIRE(wait_exit(spawn(ref, {}, dir.path / "straight.out", {}, torchrun(dir.path / "logs2", {"--standalone"})),
                    300) == 0);
  auto a = load(straight / "ckpt.safetensors"), b = load(run / "ckpt.safetensors");
  REQUIRE(b->step() == 30);
  CHECK(same_state(*a->G, *b->G));
  CHECK(same_state(*a->D, *b->D));
  CHECK(same_state(*a->F.module, *b->F.module));
}

// The kill test (ctest entry trainer_kill_resume, docs/reliability.md): SIGKILL a training run at
// random moments, resume it, and compare with an uninterrupted run bit for bit.
#include "helpers.hpp"

#include <chrono>
#include <csignal>
#include <functional>
#include <iterator>
#include <random>
#include <sys/stat.h>

using namespace trainer_tests;

TEST_CASE("kill -9 at random moments, then --resume, reproduces the uninterrupted run", "[kill]") {
  // A tiny run (24x24 synthetic images, ngf = ndf = 4: ~0.1 s a step) with a checkpoint every 3
  // steps and a log line every 2, so checkpoints fall inside log windows too.
  torch::set_num_threads(1);
  TempDir dir("kill");
  const int64_t steps = 60, checkpoint_every = 3;
  const std::vector<std::string> common = {
      "train", "--synthetic-size", "24", "--synthetic-count", "8", "--ngf", "4", "--ndf", "4", "--n-blocks", "1",
      "--num-patches", "16", "--steps", std::to_string(steps), "--log-every", "2", "--sample-every", "7",
      "--checkpoint-every", std::to_string(checkpoint_every), "--seed", "5"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
  };
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("PATCHGCL_KILL_SEED")) seed = std::stoull(s);
  std::mt19937_64 rng(seed);
  fmt::print("kill test: seed {0} (PATCHGCL_KILL_SEED={0} replays the kill plan)\n", seed);
  INFO("seed " << seed);

  // 1. The reference: one uninterrupted run.
  const auto straight_start = clock::now();
  const fs::path straight = dir.path / "straight", killed = dir.path / "killed";
  auto ref = run_trainer(with({"--run", straight.string()}), dir.path / "straight.out");
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  fmt::print("kill test: uninterrupted run of {} steps took {} ms\n", steps, ms_since(straight_start));

  // 2. The same command in another folder, killed with SIGKILL five times, then resumed to the end.
  // Kinds of kill, in a seeded order:
  //   startup    - at a random 0-400 ms after exec (loading, log truncation, first steps);
  //   steps      - once the process has logged 1-8 steps past the checkpoint it resumed from, plus 0-150 ms;
  //   checkpoint - once it has logged 1-4 steps past it, as soon as ckpt.pt.tmp appears: mid-write.
  // Each kill leaves at most ~12 steps of progress, so all five land before step 60.
  std::vector<std::string> plan = {"startup", "steps", "checkpoint", "steps", "checkpoint"};
  std::shuffle(plan.begin(), plan.end(), rng);
  const fs::path ckpt = killed / "ckpt.pt", tmp = killed / "ckpt.pt.tmp", log = killed / "log.jsonl";
  // Every restart, the last one included: --resume once a complete checkpoint exists, else from the start.
  auto restart_args = [&] {
    return fs::exists(ckpt) ? with({"--run", killed.string(), "--resume"}) : with({"--run", killed.string()});
  };
  int kills = 0, mid_write = 0, restarts = 0;
  int64_t last_checkpoint = -1;
  std::string history;
  const auto killed_start = clock::now();
  for (const auto& kind : plan) {
    const int64_t from = std::max<int64_t>(loadable_checkpoint_step(ckpt), 0);
    // A ckpt.pt.tmp found after the kill is that process's torn write only if it is not the one a
    // predecessor left (a startup kill can land before the trainer removes it).
    auto tmp_mtime = [&] {
      struct stat st {};
      return ::stat(tmp.c_str(), &st) == 0 ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : -1LL;
    };
    const long long stale_tmp = tmp_mtime();
    auto args = restart_args();
    const auto spawned = clock::now();
    const fs::path out = dir.path / ("killed_" + std::to_string(restarts++) + ".out");
    const pid_t pid = spawn_trainer(args, out);
    int status = 0;
    bool exited = false;
    // Polls `ready` every 0.2 ms; false if the process exited first.
    auto poll_until = [&](const std::function<bool()>& ready) {
      while (!ready()) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          exited = true;
          return false;
        }
        if (ms_since(spawned) > 60000) FAIL("the trainer made no progress for 60 s");
        ::usleep(200);
      }
      return true;
    };
    if (kind == "startup") {
      const auto delay = std::uniform_int_distribution<int>(0, 400)(rng);
      poll_until([&] { return ms_since(spawned) >= delay; });
    } else if (kind == "steps") {
      const int64_t target = from + std::uniform_int_distribution<int64_t>(1, 8)(rng);
      const auto extra = std::uniform_int_distribution<int>(0, 150)(rng);
      if (poll_until([&] { return last_printed_step(out) >= target; })) {
        const auto t = clock::now();
        poll_until([&] { return ms_since(t) >= extra; });
      }
    } else {
      const int64_t after = from + std::uniform_int_distribution<int64_t>(1, 4)(rng);
      poll_until([&] { return last_printed_step(out) >= after && fs::exists(tmp); });
    }
    if (exited) {
      FAIL("the trainer exited (status " << status << ") before the planned '" << kind << "' kill; history:\n"
                                         << history);
    }
    const auto at_ms = ms_since(spawned);
    const int64_t logged = last_logged_step(log);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    const bool by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const bool torn = tmp_mtime() != -1 && tmp_mtime() != stale_tmp;
    // The latest complete checkpoint always loads, and never goes back in time.
    const int64_t step = loadable_checkpoint_step(ckpt);
    fmt::format_to(std::back_inserter(history), "  kill {} ({}): {} ms after exec, log at step {}, checkpoint at step {}{}{}\n",
                   kills + 1, kind, at_ms, logged, step, torn ? ", ckpt.pt.tmp left behind (killed mid-write)" : "",
                   by_kill ? "" : ", but the process had already exited");
    REQUIRE(by_kill);
    CHECK(step >= last_checkpoint);
    CHECK((step == -1 || step % checkpoint_every == 0 || step == steps));
    last_checkpoint = step;
    ++kills;
    mid_write += torn;
  }
  // The last run restarts as the others did (all five kills can land before the first checkpoint is
  // complete: seed 2144207849 under load).
  const bool resumes = fs::exists(ckpt);
  const int64_t resumed_from = loadable_checkpoint_step(ckpt);
  auto last = run_trainer(restart_args(), dir.path / "killed_final.out");
  fmt::format_to(std::back_inserter(history), "  final run: {}\n",
                 resumes ? fmt::format("--resume from step {}", resumed_from)
                         : std::string("from the start (no checkpoint was complete)"));
  fmt::print("kill test: {} kills ({} during a checkpoint write), {} processes, {} ms in all:\n{}", kills, mid_write,
             restarts + 1, ms_since(killed_start), history);
  INFO("kills:\n" << history << "final run output:\n" << last.output);
  REQUIRE(last.status == 0);
  CHECK(kills >= 3);
  CHECK_FALSE(fs::exists(tmp));

  // 3. Same log, step for step: no step missing or repeated, every deterministic field equal
  // (the log prints 6 significant digits; the weights below are compared exactly).
  auto a = report::read_log(straight / "log.jsonl"), b = report::read_log(log);
  REQUIRE(a.size() == static_cast<size_t>(steps / 2));
  REQUIRE(b.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("log line " << i + 1);
    CHECK(b[i].at("step") == static_cast<double>(2 * (i + 1)));
    for (const auto& key : report::log_keys()) {
      if (key == "it_per_s" || key == "elapsed_s") continue;  // timings
      INFO(key);
      REQUIRE(a[i].count(key) == 1);
      REQUIRE(b[i].count(key) == 1);
      CHECK(a[i].at(key) == b[i].at(key));
    }
  }

  // 4. Same final state, bit for bit: networks, and (through one more step from each) optimiser states.
  const auto config = checkpoint::read_config(straight / "ckpt.pt");
  Trainer ta(config, torch::kCPU), tb(config, torch::kCPU);
  checkpoint::restore(ta, straight / "ckpt.pt");
  checkpoint::restore(tb, ckpt);
  REQUIRE(ta.step() == steps);
  REQUIRE(tb.step() == steps);
  CHECK(same_state(*ta.G, *tb.G));
  CHECK(same_state(*ta.D, *tb.D));
  CHECK(same_state(*ta.F.module, *tb.F.module));
  UnpairedDataset data(config.data);
  auto batch = data.batch(steps, config.batch_size);
  ta.train_step(batch);
  tb.train_step(batch);
  CHECK(same_state(*ta.G, *tb.G));
  CHECK(same_state(*ta.D, *tb.D));
  CHECK(same_state(*ta.F.module, *tb.F.module));
}

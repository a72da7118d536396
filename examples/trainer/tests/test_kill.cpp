// The kill test (ctest entry trainer_kill_resume, docs/reliability.md): SIGKILL a training run at
// random moments, resume it, and compare with an uninterrupted run bit for bit.
#include "trainer/tests/helpers.hpp"

#include <sys/stat.h>
#include <chrono>
#include <csignal>
#include <functional>
#include <iterator>
#include <random>

using namespace trainer_tests;

namespace {

using clock_type = std::chrono::steady_clock;
long long ms_since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t).count();
}

/// The killed run: the same command in its own folder, started, killed with SIGKILL at a moment
/// of a given kind, and restarted, with a history of what each kill hit.
class KilledRun {
  const TempDir& dir_;  // first: the paths below are made from it

 public:
  KilledRun(const TempDir& dir, std::function<std::vector<std::string>(std::vector<std::string>)> with,
            int64_t checkpoint_every, int64_t steps, std::mt19937_64& rng)
      : dir_(dir), with_(std::move(with)), checkpoint_every_(checkpoint_every), steps_(steps), rng_(rng) {}

  const fs::path folder = dir_.path / "killed", ckpt = folder / "ckpt.safetensors",
                 tmp = folder / "ckpt.safetensors.tmp", log = folder / "log.jsonl";
  int kills = 0, mid_write = 0, restarts = 0;
  std::string history;

  /// Every restart, the last one included: --resume once a complete checkpoint exists, else from the start.
  std::vector<std::string> restart_args() const {
    return fs::exists(ckpt) ? with_({"--run", folder.string(), "--resume"}) : with_({"--run", folder.string()});
  }

  /// Kinds of kill:
  ///   startup    - at a random 0-400 ms after exec (loading, log truncation, first steps);
  ///   steps      - once the process has logged 1-8 steps past the checkpoint it resumed from, plus 0-150 ms;
  ///   checkpoint - once it has logged 1-4 steps past it, as soon as ckpt.safetensors.tmp appears: mid-write.
  void kill_once(const std::string& kind) {
    const int64_t from = std::max<int64_t>(loadable_checkpoint_step(ckpt), 0);
    const long long stale_tmp = tmp_mtime();
    spawned_ = clock_type::now();
    out_ = dir_.path / ("killed_" + std::to_string(restarts++) + ".out");
    pid_ = spawn_trainer(restart_args(), out_);
    exited_ = false;
    wait_for_moment(kind, from);
    if (exited_) {
      FAIL("the trainer exited (status " << status_ << ") before the planned '" << kind << "' kill; history:\n"
                                         << history);
    }
    const auto at_ms = ms_since(spawned_);
    const int64_t logged = last_logged_step(log);
    REQUIRE(::kill(pid_, SIGKILL) == 0);
    status_ = patchgcl_test::wait_status(pid_);
    const bool by_kill = WIFSIGNALED(status_) && WTERMSIG(status_) == SIGKILL;
    const bool torn = tmp_mtime() != -1 && tmp_mtime() != stale_tmp;
    // The latest complete checkpoint always loads, and never goes back in time.
    const int64_t step = loadable_checkpoint_step(ckpt);
    fmt::format_to(std::back_inserter(history),
                   "  kill {} ({}): {} ms after exec, log at step {}, checkpoint at step {}{}{}\n", kills + 1, kind,
                   at_ms, logged, step, torn ? ", ckpt.safetensors.tmp left behind (killed mid-write)" : "",
                   by_kill ? "" : ", but the process had already exited");
    REQUIRE(by_kill);
    CHECK(step >= last_checkpoint_);
    CHECK((step == -1 || step % checkpoint_every_ == 0 || step == steps_));
    last_checkpoint_ = step;
    ++kills;
    mid_write += torn;
  }

 private:
  /// A ckpt.safetensors.tmp found after the kill is that process's torn write only if it is not the one a
  /// predecessor left (a startup kill can land before the trainer removes it).
  long long tmp_mtime() const {
    struct stat st {};
    return ::stat(tmp.c_str(), &st) == 0 ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : -1LL;
  }

  /// Polls `ready` every 0.2 ms; false if the process exited first.
  bool poll_until(const std::function<bool()>& ready) {
    while (!ready()) {
      if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
        exited_ = true;
        return false;
      }
      if (ms_since(spawned_) > 60000) FAIL("the trainer made no progress for 60 s");
      ::usleep(200);
    }
    return true;
  }

  void wait_for_moment(const std::string& kind, int64_t from) {
    if (kind == "startup") {
      const auto delay = std::uniform_int_distribution<int>(0, 400)(rng_);
      poll_until([&] { return ms_since(spawned_) >= delay; });
    } else if (kind == "steps") {
      const int64_t target = from + std::uniform_int_distribution<int64_t>(1, 8)(rng_);
      const auto extra = std::uniform_int_distribution<int>(0, 150)(rng_);
      if (poll_until([&] { return last_printed_step(out_) >= target; })) {
        const auto t = clock_type::now();
        poll_until([&] { return ms_since(t) >= extra; });
      }
    } else {
      const int64_t after = from + std::uniform_int_distribution<int64_t>(1, 4)(rng_);
      poll_until([&] { return last_printed_step(out_) >= after && fs::exists(tmp); });
    }
  }

  std::function<std::vector<std::string>(std::vector<std::string>)> with_;
  int64_t checkpoint_every_, steps_;
  std::mt19937_64& rng_;
  int64_t last_checkpoint_ = -1;
  clock_type::time_point spawned_;
  fs::path out_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

/// Same log, step for step: no step missing or repeated, every deterministic field equal (the log
/// prints 6 significant digits; the weights are compared exactly elsewhere).
void check_same_log(const fs::path& straight, const fs::path& killed, int64_t steps) {
  auto a = report::read_log(straight), b = report::read_log(killed);
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
}

/// Same final state, bit for bit: networks, and (through one more step from each) optimiser states.
void check_same_final_state(const fs::path& straight_ckpt, const fs::path& killed_ckpt, int64_t steps) {
  const auto config = checkpoint::read_config(straight_ckpt);
  Trainer ta(config, torch::kCPU), tb(config, torch::kCPU);
  checkpoint::restore(ta, straight_ckpt);
  checkpoint::restore(tb, killed_ckpt);
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

}  // namespace

TEST_CASE("kill -9 at random moments, then --resume, reproduces the uninterrupted run", "[kill]") {
  // A tiny run (24x24 synthetic images, ngf = ndf = 4: ~0.1 s a step) with a checkpoint every 3
  // steps and a log line every 2, so checkpoints fall inside log windows too.
  torch::set_num_threads(1);
  TempDir dir("kill");
  const int64_t steps = 60, checkpoint_every = 3;
  const std::vector<std::string> common = {"train",
                                           "--synthetic-size",
                                           "24",
                                           "--synthetic-count",
                                           "8",
                                           "--ngf",
                                           "4",
                                           "--ndf",
                                           "4",
                                           "--n-blocks",
                                           "1",
                                           "--num-patches",
                                           "16",
                                           "--steps",
                                           std::to_string(steps),
                                           "--log-every",
                                           "2",
                                           "--sample-every",
                                           "7",
                                           "--checkpoint-every",
                                           std::to_string(checkpoint_every),
                                           "--seed",
                                           "5"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("PATCHGCL_KILL_SEED")) seed = std::stoull(s);
  std::mt19937_64 rng(seed);
  fmt::print("kill test: seed {0} (PATCHGCL_KILL_SEED={0} replays the kill plan)\n", seed);
  INFO("seed " << seed);

  // 1. The reference: one uninterrupted run.
  const auto straight_start = clock_type::now();
  const fs::path straight = dir.path / "straight";
  auto ref = run_trainer(with({"--run", straight.string()}), dir.path / "straight.out");
  INFO(ref.output);
  REQUIRE(ref.status == 0);
  fmt::print("kill test: uninterrupted run of {} steps took {} ms\n", steps, ms_since(straight_start));

  // 2. The same command in another folder, killed with SIGKILL five times in a seeded order of
  // kinds, then resumed to the end. Each kill leaves at most ~12 steps of progress, so all five
  // land before step 60.
  std::vector<std::string> plan = {"startup", "steps", "checkpoint", "steps", "checkpoint"};
  std::shuffle(plan.begin(), plan.end(), rng);
  KilledRun killed(dir, with, checkpoint_every, steps, rng);
  const auto killed_start = clock_type::now();
  for (const auto& kind : plan) killed.kill_once(kind);
  // The last run restarts as the others did (all five kills can land before the first checkpoint is
  // complete: seed 2144207849 under load).
  const bool resumes = fs::exists(killed.ckpt);
  const int64_t resumed_from = loadable_checkpoint_step(killed.ckpt);
  auto last = run_trainer(killed.restart_args(), dir.path / "killed_final.out");
  fmt::format_to(std::back_inserter(killed.history), "  final run: {}\n",
                 resumes ? fmt::format("--resume from step {}", resumed_from)
                         : std::string("from the start (no checkpoint was complete)"));
  fmt::print("kill test: {} kills ({} during a checkpoint write), {} processes, {} ms in all:\n{}", killed.kills,
             killed.mid_write, killed.restarts + 1, ms_since(killed_start), killed.history);
  INFO("kills:\n" << killed.history << "final run output:\n" << last.output);
  REQUIRE(last.status == 0);
  CHECK(killed.kills >= 3);
  CHECK_FALSE(fs::exists(killed.tmp));

  // 3. and 4.: the same log and the same final state.
  check_same_log(straight / "log.jsonl", killed.log, steps);
  check_same_final_state(straight / "ckpt.safetensors", killed.ckpt, steps);
}

// Processes for the distributed trainer tests: the trainer binary with torchrun's variables, 2 ranks
// of it on 127.0.0.1 (tests/support/multi_process.hpp), exit codes with a deadline, free ports,
// checkpoints loaded back.
#pragma once

#include "trainer/tests/helpers.hpp"

#include <patchgcl/distributed.hpp>

#include <support/multi_process.hpp>

#include <torch/version.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <thread>

namespace trainer_tests::distributed {

using clock_type = std::chrono::steady_clock;
inline double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// The tiny networks (the 32 px embedded dataset, 16 images per domain).
inline std::vector<std::string> tiny(std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "--threads", "1",     "train", "--synthetic-size", "32", "--synthetic-count", "16", "--ngf",
      "8",         "--ndf", "8",     "--n-blocks",       "1",  "--num-patches",     "32", "--seed",
      "3"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// fork + execve of the trainer with `args` in trainer_environment(`env`) (so without torchrun's
/// variables unless `env` gives them), in `cwd` (empty: this one), stdout and stderr to `log`.
/// `wrapper` goes before the trainer's path (e.g. `ip netns exec NS`; its first word is looked up in PATH).
inline pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env, const fs::path& log,
                   const fs::path& cwd = {}, const std::vector<std::string>& wrapper = {}) {
  std::vector<std::string> argv =
      wrapper.empty() ? std::vector<std::string>{} : std::vector<std::string>{"/usr/bin/env"};
  argv.insert(argv.end(), wrapper.begin(), wrapper.end());
  argv.push_back(kTrainerBinary);
  argv.insert(argv.end(), args.begin(), args.end());
  return patchgcl_test::spawn(std::move(argv), trainer_environment(env), log.string(), cwd.string());
}

/// Exit code (-signal when killed), or fails the test after `timeout_s` (and kills the child).
inline int wait_exit(pid_t pid, double timeout_s = 300) {
  const int status = patchgcl_test::wait_for(pid, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  if (status == -1) FAIL("a trainer process still ran after " << timeout_s << " s");
  return patchgcl_test::exit_code(status);
}

/// A port that was free a moment ago (a store on port 0, closed again): for rank 0 to serve.
inline int free_port() {
  auto store = patchgcl::distributed::connect_store("127.0.0.1", 0, 0, 1, std::chrono::milliseconds(5000));
  return store->getPort();
}

/// torchrun's five variables for `rank` of `world`.
inline std::vector<std::string> torchrun_env(int rank, int world, int port) {
  return {fmt::format("RANK={}", rank), fmt::format("WORLD_SIZE={}", world), fmt::format("LOCAL_RANK={}", rank),
          "MASTER_ADDR=127.0.0.1", fmt::format("MASTER_PORT={}", port)};
}

/// 2 ranks of the trainer, rank r with `args_of(r)`, started by hand with torchrun's variables
/// (rank 0 serving the store on a free port) in `cwd`, rank r's output in `log_prefix` + r.
inline patchgcl_test::Ranks spawn_ranks(const std::function<std::vector<std::string>(int rank)>& args_of,
                                        const fs::path& log_prefix, const fs::path& cwd = {}) {
  return patchgcl_test::Ranks(
      2,
      [&](int rank, int port) {
        std::vector<std::string> argv = {kTrainerBinary};
        const auto args = args_of(rank);
        argv.insert(argv.end(), args.begin(), args.end());
        return patchgcl_test::RankCommand{argv, trainer_environment(torchrun_env(rank, 2, port))};
      },
      log_prefix.string(), free_port(), cwd.string());
}

/// 2 ranks of the trainer with `args` (spawn_ranks above).
inline patchgcl_test::Ranks spawn_ranks(const std::vector<std::string>& args, const fs::path& log_prefix,
                                        const fs::path& cwd = {}) {
  return spawn_ranks([&](int) { return args; }, log_prefix, cwd);
}

/// Waits for every rank (up to 300 s each, then killed) and requires that each exits 0; their
/// output goes into the report.
inline void require_success(const patchgcl_test::Ranks& ranks) {
  const auto statuses = ranks.wait(std::chrono::seconds(300));
  INFO(ranks.outputs());
  for (int status : statuses) REQUIRE(patchgcl_test::exited_ok(status));
}

/// torchrun variables the trainer refuses, each with the phrase of its error: the unit test reads
/// them with dist::read_env, the binary test starts the trainer with them.
struct RefusedEnv {
  std::vector<std::string> env;  ///< "NAME=value"
  std::string phrase;
};
inline const std::vector<RefusedEnv>& refused_torchrun_env() {
  static const std::vector<RefusedEnv> cases = {
      {{"RANK=2", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"},
       "RANK must be in [0, WORLD_SIZE = 2), got 2"},
      {{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1"}, "MASTER_PORT is not set"},
      {{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=http"},
       "MASTER_PORT must be a port number in [1, 65535], got 'http'"},
      {{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=70000"}, "got '70000'"},
      {{"RANK=0", "WORLD_SIZE=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"},
       "WORLD_SIZE must be a whole number >= 1, got '0'"},
      {{"RANK=-1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"},
       "RANK must be a whole number >= 0, got '-1'"},
  };
  return cases;
}

inline std::unique_ptr<Trainer> load(const fs::path& ckpt) {
  auto t = std::make_unique<Trainer>(checkpoint::read_config(ckpt), torch::kCPU);
  checkpoint::restore(*t, ckpt);
  return t;
}

/// Why the torchrun tests cannot run here ("" when they can): no torchrun on PATH, or one whose
/// torch is another version than the LibTorch the trainer is built with (their TCPStore protocols
/// differ: a 2.x rank cannot talk to 1.13's agent store).
inline std::string why_no_torchrun() {
  if (!patchgcl_test::on_path("torchrun")) return "no torchrun on PATH (Debian: apt-get install python3-torch)";
  const std::string mine = fmt::format("{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR);
  const auto version = patchgcl_test::shell_output(
      "\"$(head -n 1 \"$(command -v torchrun)\" | sed 's/^#! *//')\" -c "
      "'import torch; v = torch.__version__.split(\".\"); print(v[0] + \".\" + v[1])' 2>/dev/null");
  std::string theirs = version.text.empty() ? "unknown" : version.text.substr(0, version.text.find('\n'));
  theirs.erase(theirs.find_last_not_of("\n ") + 1);
  if (theirs != mine)
    return fmt::format("the torchrun on PATH runs torch {}, the trainer is built with LibTorch {}", theirs, mine);
  return "";
}

/// `torchrun -r 1 -t 1 --log_dir DIR <rendezvous...> --nproc_per_node N --no_python`, before the trainer.
inline std::vector<std::string> torchrun(const fs::path& log_dir, std::vector<std::string> rendezvous, int nproc = 2) {
  std::vector<std::string> w = {"torchrun", "-r", "1", "-t", "1", "--log_dir", log_dir.string()};
  w.insert(w.end(), rendezvous.begin(), rendezvous.end());
  w.insert(w.end(), {"--nproc_per_node", std::to_string(nproc), "--no_python"});
  return w;
}

/// The trainer processes among `pid`'s children.
inline std::vector<pid_t> trainer_children(pid_t pid) {
  std::vector<pid_t> out;
  for (pid_t c : patchgcl_test::children_of(pid)) {
    std::error_code ec;
    if (fs::read_symlink(fmt::format("/proc/{}/exe", c), ec) == fs::path(kTrainerBinary)) out.push_back(c);
  }
  return out;
}

}  // namespace trainer_tests::distributed

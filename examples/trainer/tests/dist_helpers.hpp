// Processes for the distributed trainer tests (test_distributed.cpp): the trainer binary with
// torchrun's variables, exit codes with a deadline, free ports, checkpoints loaded back.
#pragma once

#include "trainer/tests/helpers.hpp"

#include <patchgcl/distributed.hpp>

#include <chrono>
#include <csignal>
#include <thread>

namespace trainer_tests::distributed {


using clock_type = std::chrono::steady_clock;
inline double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// The tiny networks (the 32 px embedded dataset, 16 images per domain).
inline std::vector<std::string> tiny(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--threads", "1", "train", "--synthetic-size", "32",
                                   "--synthetic-count", "16", "--ngf", "8", "--ndf", "8", "--n-blocks", "1",
                                   "--num-patches", "32", "--seed", "3"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// fork + execve of the trainer with `args`, the environment changed by `env` ("NAME=value";
/// "NAME=" removes NAME; torchrun's variables are removed unless given), one OpenMP thread, in
/// `cwd` (empty: this one), stdout and stderr to `log`. `wrapper` goes before the trainer's path
/// (e.g. `ip netns exec NS`; its first word is looked up in PATH).
inline pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env, const fs::path& log,
                   const fs::path& cwd = {}, const std::vector<std::string>& wrapper = {}) {
  std::vector<std::string> argv_s = wrapper.empty() ? std::vector<std::string>{} : std::vector<std::string>{"/usr/bin/env"};
  argv_s.insert(argv_s.end(), wrapper.begin(), wrapper.end());
  argv_s.push_back(kTrainerBinary);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> changes = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "MASTER_ADDR=", "MASTER_PORT=",
                                      "PATCHGCL_AGENT_STORE=", "OMP_NUM_THREADS=1"};
  changes.insert(changes.end(), env.begin(), env.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
  for (const auto& kv : changes) {
    const auto name = kv.substr(0, kv.find('=') + 1);
    env_s.erase(std::remove_if(env_s.begin(), env_s.end(), [&](const std::string& e) { return e.rfind(name, 0) == 0; }),
                env_s.end());
    if (kv.size() > name.size()) env_s.push_back(kv);
  }
  return spawn_process(std::move(argv_s), std::move(env_s), log, cwd);
}

/// Exit code (-signal when killed), or fails the test after `timeout` (and kills the child).
inline int wait_exit(pid_t pid, double timeout_s = 300) {
  const auto start = clock_type::now();
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    REQUIRE(r >= 0);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    if (seconds_since(start) > timeout_s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("a trainer process still ran after " << timeout_s << " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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

/// 2 ranks started by hand (rank 0 serving the store on a free port); returns their pids.
inline std::vector<pid_t> spawn_ranks(const std::vector<std::string>& args, const fs::path& log_prefix,
                               const fs::path& cwd = {}) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn(args, torchrun_env(r, 2, port), log_prefix.string() + std::to_string(r), cwd));
  return pids;
}

/// torchrun variables the trainer refuses, each with the phrase of its error: the unit test reads
/// them with dist::read_env, the binary test starts the trainer with them.
struct RefusedEnv {
  std::vector<std::string> env;  ///< "NAME=value"
  std::string phrase;
};
inline const std::vector<RefusedEnv>& refused_torchrun_env() {
  static const std::vector<RefusedEnv> cases = {
      {{"RANK=2", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"}, "RANK must be in [0, WORLD_SIZE = 2), got 2"},
      {{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1"}, "MASTER_PORT is not set"},
      {{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=http"},
       "MASTER_PORT must be a port number in [1, 65535], got 'http'"},
      {{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=70000"}, "got '70000'"},
      {{"RANK=0", "WORLD_SIZE=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"}, "WORLD_SIZE must be a whole number >= 1, got '0'"},
      {{"RANK=-1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"}, "RANK must be a whole number >= 0, got '-1'"},
  };
  return cases;
}

inline std::unique_ptr<Trainer> load(const fs::path& ckpt) {
  auto t = std::make_unique<Trainer>(checkpoint::read_config(ckpt), torch::kCPU);
  checkpoint::restore(*t, ckpt);
  return t;
}

}  // namespace trainer_tests::distributed

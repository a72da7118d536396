// `patchgcl-trainer launch`: torchrun's job for users without Python. Starts N local ranks of
// `patchgcl-trainer <args>` with torchrun's variables, forwards SIGINT/SIGTERM to them, and
// exits non-zero naming the rank that failed and how.
//
// One node without --master-port: the launcher serves the rendezvous store itself (a c10d
// TCPStore on a port the OS picks) and tells the ranks so (PATCHGCL_AGENT_STORE=1), as
// torchrun's agent store does; with --master-port (several nodes) rank 0 serves it.
#pragma once

#include <patchgcl/distributed.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace trainer {
namespace launch {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  ///< 0: one node only, the launcher serves the store on a free port
  /// Seconds the other ranks get to exit on their own after one failed (they notice the lost
  /// peer at their next collective) before they get SIGTERM, then SIGKILL 5 s later.
  int grace_s = 30;
  std::vector<std::string> args;  ///< the trainer's command after `--`, e.g. {"train", "--steps", "20"}
};

namespace detail {
inline volatile std::sig_atomic_t pending_signal = 0;
inline void on_signal(int sig) { pending_signal = sig; }

inline std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    return fmt::format("was killed by signal {} ({})", s, strsignal(s));
  }
  return fmt::format("ended with wait status {}", status);
}
inline int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
}  // namespace detail

/// The path of the running executable (the ranks run the same binary).
inline std::string self_exe() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw std::runtime_error(fmt::format("launch: cannot find this executable: {}", std::strerror(errno)));
  return std::string(buf.data(), static_cast<size_t>(n));
}

inline void validate(const LaunchOptions& o) {
  auto bad = [](const std::string& opt, const std::string& expected, auto actual) {
    throw std::invalid_argument(fmt::format("{} must be {} (got {})", opt, expected, actual));
  };
  if (o.nproc_per_node < 1) bad("--nproc-per-node", "at least 1", o.nproc_per_node);
  if (o.nnodes < 1) bad("--nnodes", "at least 1", o.nnodes);
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    bad("--node-rank", fmt::format("in [0, --nnodes = {})", o.nnodes), o.node_rank);
  if (o.master_port < 0 || o.master_port > 65535)
    bad("--master-port", "a port in [1, 65535] (or 0: pick one, one node only)", o.master_port);
  if (o.nnodes > 1 && o.master_port == 0) bad("--master-port", "set when --nnodes > 1 (the same on every node)", 0);
  if (o.master_addr.empty()) bad("--master-addr", "a host name or address", "''");
  if (o.grace_s < 0) bad("--grace", "at least 0", o.grace_s);
  if (o.args.empty())
    throw std::invalid_argument("launch needs the trainer's command after `--`, e.g. `-- train --steps 20`");
}

namespace detail {

/// One node without --master-port: the launcher serves the store on a port the OS picks.
inline c10::intrusive_ptr<c10d::TCPStore> serve_agent_store(const LaunchOptions& o, int world) {
  c10d::TCPStoreOptions so;
  so.port = 0;
  so.isServer = true;
  so.numWorkers = static_cast<std::size_t>(world);
  so.waitWorkers = false;
  return c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
}

inline void forward_signals_to_ranks() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

/// The launcher's environment without torchrun's variables; one OpenMP thread per rank when
/// several share the node and the user did not choose (as torchrun does).
inline std::vector<std::string> base_environment(const LaunchOptions& o) {
  std::vector<std::string> env;
  static const char* ours[] = {"RANK",       "WORLD_SIZE",  "LOCAL_RANK",  "LOCAL_WORLD_SIZE",
                               "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT", "PATCHGCL_AGENT_STORE"};
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const auto name = kv.substr(0, kv.find('='));
    bool skip = false;
    for (const char* n : ours) skip = skip || name == n;
    if (!skip) env.push_back(kv);
  }
  if (o.nproc_per_node > 1 && !std::getenv("OMP_NUM_THREADS")) {
    env.push_back("OMP_NUM_THREADS=1");
    std::cerr << "launch: OMP_NUM_THREADS=1 for each rank (set it, or --threads, to choose)\n";
  }
  return env;
}

struct Rank {
  int rank;
  pid_t pid;
  bool done = false;
  int status = 0;
};

/// fork + execve of `exe args` as local rank `local`, with torchrun's variables.
inline Rank start_rank(const LaunchOptions& o, const std::string& exe, std::vector<std::string> env, int local,
                       int world, int port, bool agent_store) {
  const int rank = o.node_rank * o.nproc_per_node + local;
  env.push_back(fmt::format("RANK={}", rank));
  env.push_back(fmt::format("WORLD_SIZE={}", world));
  env.push_back(fmt::format("LOCAL_RANK={}", local));
  env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", o.nproc_per_node));
  env.push_back(fmt::format("GROUP_RANK={}", o.node_rank));
  env.push_back(fmt::format("MASTER_ADDR={}", o.master_addr));
  env.push_back(fmt::format("MASTER_PORT={}", port));
  if (agent_store) env.push_back("PATCHGCL_AGENT_STORE=1");
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(fmt::format("launch: fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return {rank, pid};
}

/// Waits for the ranks: forwards the launcher's signals to them, and after the first failure gives
/// the others `grace_s` seconds to stop on their own, then SIGTERM, then SIGKILL 5 s later.
class Supervisor {
 public:
  Supervisor(std::vector<Rank> ranks, int grace_s) : ranks_(std::move(ranks)), grace_s_(grace_s) {}

  /// The launcher's exit code: 0, the first failed rank's code, or 128 + a forwarded signal.
  int wait() {
    for (;;) {
      forward_pending_signal();
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid > 0) {
        reaped(pid, status);
        continue;
      }
      if (all_done()) break;
      if (failed_) stop_the_others();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (code_ != 0) {
      std::vector<int> bad;
      for (auto& r : ranks_)
        if (!(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)) bad.push_back(r.rank);
      std::cerr << fmt::format("launch: failed; rank(s) {} did not finish\n", fmt::join(bad, ", "));
    }
    return code_;
  }

 private:
  void signal_running(int sig) {
    for (auto& r : ranks_)
      if (!r.done) kill(r.pid, sig);
  }
  void forward_pending_signal() {
    if (!pending_signal || pending_signal == forwarded_) return;
    forwarded_ = pending_signal;
    std::cerr << fmt::format("launch: forwarding signal {} ({}) to the ranks\n", forwarded_, strsignal(forwarded_));
    signal_running(forwarded_);
    if (code_ == 0) code_ = 128 + forwarded_;
  }
  void reaped(pid_t pid, int status) {
    for (auto& r : ranks_) {
      if (r.pid != pid) continue;
      r.done = true;
      r.status = status;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
      std::cerr << fmt::format("launch: rank {} (pid {}) {}\n", r.rank, r.pid, describe(status));
      if (!failed_ && !forwarded_) {
        failed_ = true;
        failure_time_ = std::chrono::steady_clock::now();
        code_ = exit_code(status);
        if (code_ == 0) code_ = 1;
      }
    }
  }
  bool all_done() const {
    for (auto& r : ranks_)
      if (!r.done) return false;
    return true;
  }
  void stop_the_others() {
    const auto since = std::chrono::steady_clock::now() - failure_time_;
    if (!termed_ && since > std::chrono::seconds(grace_s_)) {
      termed_ = true;
      std::cerr << fmt::format("launch: the other ranks are still running {} s after the failure; sending SIGTERM\n",
                               grace_s_);
      signal_running(SIGTERM);
    } else if (termed_ && !killed_ && since > std::chrono::seconds(grace_s_ + 5)) {
      killed_ = true;
      signal_running(SIGKILL);
    }
  }

  std::vector<Rank> ranks_;
  int grace_s_;
  int code_ = 0;
  int forwarded_ = 0;
  bool failed_ = false, termed_ = false, killed_ = false;
  std::chrono::steady_clock::time_point failure_time_;
};

}  // namespace detail

/// Runs the ranks of this node and returns the launcher's exit code.
inline int run(const LaunchOptions& o, const std::string& exe) {
  validate(o);
  const int world = o.nproc_per_node * o.nnodes;
  c10::intrusive_ptr<c10d::TCPStore> agent_store;
  int port = o.master_port;
  if (port == 0) {
    agent_store = detail::serve_agent_store(o, world);
    port = agent_store->getPort();
  }
  detail::forward_signals_to_ranks();
  const auto env = detail::base_environment(o);
  std::vector<detail::Rank> ranks;
  for (int local = 0; local < o.nproc_per_node; ++local)
    ranks.push_back(detail::start_rank(o, exe, env, local, world, port, static_cast<bool>(agent_store)));
  std::cerr << fmt::format("launch: {} rank(s) on this node (world size {}), master {}:{}\n", ranks.size(), world,
                           o.master_addr, port);
  return detail::Supervisor(std::move(ranks), o.grace_s).wait();
}

}  // namespace launch
}  // namespace trainer

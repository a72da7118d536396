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

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
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
  if (o.node_rank < 0 || o.node_rank >= o.nnodes) bad("--node-rank", fmt::format("in [0, --nnodes = {})", o.nnodes), o.node_rank);
  if (o.master_port < 0 || o.master_port > 65535) bad("--master-port", "a port in [1, 65535] (or 0: pick one, one node only)", o.master_port);
  if (o.nnodes > 1 && o.master_port == 0) bad("--master-port", "set when --nnodes > 1 (the same on every node)", 0);
  if (o.master_addr.empty()) bad("--master-addr", "a host name or address", "''");
  if (o.grace_s < 0) bad("--grace", "at least 0", o.grace_s);
  if (o.args.empty()) throw std::invalid_argument("launch needs the trainer's command after `--`, e.g. `-- train --steps 20`");
}

/// Runs the ranks of this node and returns the launcher's exit code.
inline int run(const LaunchOptions& o, const std::string& exe) {
  validate(o);
  const int world = o.nproc_per_node * o.nnodes;
  c10::intrusive_ptr<c10d::TCPStore> agent_store;
  int port = o.master_port;
  if (port == 0) {
    c10d::TCPStoreOptions so;
    so.port = 0;
    so.isServer = true;
    so.numWorkers = static_cast<std::size_t>(world);
    so.waitWorkers = false;
    agent_store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    port = agent_store->getPort();
  }

  struct sigaction sa {};
  sa.sa_handler = detail::on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  struct Rank {
    int rank;
    pid_t pid;
    bool done = false;
    int status = 0;
  };
  std::vector<Rank> ranks;
  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const auto name = kv.substr(0, kv.find('='));
    static const char* ours[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                                 "MASTER_PORT", "PATCHGCL_AGENT_STORE"};
    bool skip = false;
    for (const char* n : ours) skip = skip || name == n;
    if (!skip) base_env.push_back(kv);
  }
  // As torchrun: several ranks on one node each get one OpenMP thread unless the user chose.
  if (o.nproc_per_node > 1 && !std::getenv("OMP_NUM_THREADS")) {
    base_env.push_back("OMP_NUM_THREADS=1");
    std::cerr << "launch: OMP_NUM_THREADS=1 for each rank (set it, or --threads, to choose)\n";
  }
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (int local = 0; local < o.nproc_per_node; ++local) {
    const int rank = o.node_rank * o.nproc_per_node + local;
    auto env = base_env;
    env.push_back(fmt::format("RANK={}", rank));
    env.push_back(fmt::format("WORLD_SIZE={}", world));
    env.push_back(fmt::format("LOCAL_RANK={}", local));
    env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", o.nproc_per_node));
    env.push_back(fmt::format("GROUP_RANK={}", o.node_rank));
    env.push_back(fmt::format("MASTER_ADDR={}", o.master_addr));
    env.push_back(fmt::format("MASTER_PORT={}", port));
    if (agent_store) env.push_back("PATCHGCL_AGENT_STORE=1");
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("launch: fork failed: {}", std::strerror(errno)));
    if (pid == 0) {
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ranks.push_back({rank, pid});
  }
  std::cerr << fmt::format("launch: {} rank(s) on this node (world size {}), master {}:{}\n", ranks.size(), world,
                           o.master_addr, port);

  int code = 0;
  int forwarded = 0;
  bool failed = false;
  auto failure_time = std::chrono::steady_clock::now();
  bool termed = false, killed = false;
  for (;;) {
    if (detail::pending_signal && detail::pending_signal != forwarded) {
      forwarded = detail::pending_signal;
      std::cerr << fmt::format("launch: forwarding signal {} ({}) to the ranks\n", forwarded, strsignal(forwarded));
      for (auto& r : ranks)
        if (!r.done) kill(r.pid, forwarded);
      if (code == 0) code = 128 + forwarded;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (auto& r : ranks) {
        if (r.pid != pid) continue;
        r.done = true;
        r.status = status;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) {
          std::cerr << fmt::format("launch: rank {} (pid {}) {}\n", r.rank, r.pid, detail::describe(status));
          if (!failed && !forwarded) {
            failed = true;
            failure_time = std::chrono::steady_clock::now();
            code = detail::exit_code(status);
            if (code == 0) code = 1;
          }
        }
      }
      continue;
    }
    bool all_done = true;
    for (auto& r : ranks) all_done = all_done && r.done;
    if (all_done) break;
    if (failed) {
      const auto since = std::chrono::steady_clock::now() - failure_time;
      if (!termed && since > std::chrono::seconds(o.grace_s)) {
        termed = true;
        std::cerr << fmt::format("launch: the other ranks are still running {} s after the failure; sending SIGTERM\n",
                                 o.grace_s);
        for (auto& r : ranks)
          if (!r.done) kill(r.pid, SIGTERM);
      } else if (termed && !killed && since > std::chrono::seconds(o.grace_s + 5)) {
        killed = true;
        for (auto& r : ranks)
          if (!r.done) kill(r.pid, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (code != 0) {
    std::vector<int> bad;
    for (auto& r : ranks)
      if (!(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)) bad.push_back(r.rank);
    std::cerr << fmt::format("launch: failed; rank(s) {} did not finish\n", fmt::join(bad, ", "));
  }
  return code;
}

}  // namespace launch
}  // namespace trainer

#pragma once
// Multi-process tests on 127.0.0.1: `world` ranks against one TCPStore, each rank's stdout and
// stderr in a log file of its own, and both sides of the command line with which a test
// executable starts itself as the ranks: `--worker NAME --rank R --world W --port P [--key value...]`.

#include <support/process.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace patchgcl_test {

/// What one rank runs: its command line (`args[0]` a path) and its environment.
struct RankCommand {
  std::vector<std::string> args;
  std::vector<std::string> env;
};

/// `world` processes, rank r running `command(r, port)` in `cwd` (empty: this one), its stdout
/// and stderr in the file `log_prefix` + r. `port` is the store's; 0: rank 0 serves the store on a
/// port the OS picks and announces it (announce_port) before the others start with it.
class Ranks {
 public:
  Ranks(int world, const std::function<RankCommand(int rank, int port)>& command, std::string log_prefix, int port,
        const std::string& cwd = {})
      : log_prefix_(std::move(log_prefix)), port_(port) {
    for (int r = 0; r < world; ++r) {
      auto c = command(r, port_);
      pids_.push_back(spawn(std::move(c.args), std::move(c.env), log(r), cwd));
      if (r == 0 && port_ == 0) port_ = std::stoi(line(0, "PORT ", std::chrono::seconds(60)));
    }
  }

  int world() const { return static_cast<int>(pids_.size()); }
  int port() const { return port_; }
  pid_t pid(int rank) const { return pids_.at(static_cast<size_t>(rank)); }
  std::string log(int rank) const { return log_prefix_ + std::to_string(rank); }
  std::string output(int rank) const { return read_text(log(rank)); }

  /// The rest of the first line of rank `rank`'s output that starts with `prefix`, once it is
  /// there; throws when the rank exits without it or `timeout` passes.
  std::string line(int rank, const std::string& prefix, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const bool exited = has_exited(pid(rank));  // before reading: a line it wrote before exiting is seen
      const auto text = output(rank);
      for (size_t at = 0; at < text.size();) {
        const auto end = text.find('\n', at);
        if (end == std::string::npos) break;  // a line still being written
        if (text.compare(at, prefix.size(), prefix) == 0)
          return text.substr(at + prefix.size(), end - at - prefix.size());
        at = end + 1;
      }
      if (exited || std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("rank " + std::to_string(rank) + (exited ? " exited" : " still ran") +
                                 " without a line '" + prefix + "...'; its output:\n" + text);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// Waits for each rank in turn, up to `timeout` each: their wait statuses (-1: still running at
  /// its timeout, then killed).
  std::vector<int> wait(std::chrono::milliseconds timeout) const {
    std::vector<int> statuses;
    for (int r = 0; r < world(); ++r) statuses.push_back(wait_for(pid(r), timeout));
    return statuses;
  }

  /// Every rank's output, "rank R:" before each, for the test's report (INFO).
  std::string outputs() const {
    std::string all;
    for (int r = 0; r < world(); ++r) all += "rank " + std::to_string(r) + ":\n" + output(r) + "\n";
    return all;
  }

 private:
  std::vector<pid_t> pids_;
  std::string log_prefix_;
  int port_;
};

/// This executable as rank `rank` of `world` running the worker `name` (worker_main) with the
/// store at 127.0.0.1:`port`, and `extra` "--key value" pairs.
inline std::vector<std::string> worker_args(const std::string& name, int rank, int world, int port,
                                            const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {
      self_exe(), "--worker",          name, "--rank", std::to_string(rank), "--world", std::to_string(world),
      "--port",   std::to_string(port)};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// `world` ranks of this executable running the worker `name`, in this process's environment.
inline Ranks worker_ranks(const std::string& name, int world, int port, const std::string& log_prefix,
                          const std::vector<std::string>& extra = {}) {
  return Ranks(
      world,
      [&](int r, int p) {
        return RankCommand{worker_args(name, r, world, p, extra), current_environment()};
      },
      log_prefix, port);
}

// The ranks' side.

/// A worker's "--key value" pairs (those after `--worker NAME`).
using WorkerArgs = std::map<std::string, std::string>;
using Worker = std::function<int(const WorkerArgs&)>;

/// Rank 0 started with port 0: tells the test the port its store listens on.
inline void announce_port(int port) {
  std::printf("PORT %d\n", port);
  std::fflush(stdout);
}

/// The process of a test executable started as `--worker NAME --key value...`: runs `workers`'
/// NAME with the pairs and returns its exit code; 1 when it throws (printing why), 2 for a NAME
/// that is not there.
inline int worker_main(int argc, char** argv, const std::map<std::string, Worker>& workers) {
  try {
    const std::string name = argc > 2 ? argv[2] : "";
    WorkerArgs a;
    for (int i = 3; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
    const auto worker = workers.find(name);
    if (worker == workers.end()) {
      std::cerr << "unknown worker '" << name << "'\n";
      return 2;
    }
    return worker->second(a);
  } catch (const std::exception& e) {
    std::cerr << "worker failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace patchgcl_test

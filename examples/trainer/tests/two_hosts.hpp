// Two hosts on one machine for the multi-node tests (test_two_hosts.cpp, test_host_faults.cpp): two
// network namespaces joined by a veth pair (ip netns, as root), a node started in each as a user
// with two machines would start it, the link between them taken down and up, and the process trees
// of the nodes killed when a test ends early.
#pragma once

#include "trainer/tests/dist_helpers.hpp"

#include <cstdlib>

namespace trainer_tests::distributed {

/// Namespaces `name(0)`, `name(1)` with `address(0)`, `address(1)` on a /24 of their own, joined by
/// the veth pair `link(0)`-`link(1)`. `ready` is false, with `why_not`, where they cannot be made.
class TwoHosts {
 public:
  TwoHosts() {
    if (::geteuid() != 0) {
      why_not = "it needs root (ip netns add)";
      return;
    }
    const int id = ::getpid() % 200;
    prefix_ = fmt::format("pgh{}", ::getpid());
    subnet_ = fmt::format("10.77.{}", 20 + id);
    const std::vector<std::string> setup = {fmt::format("ip netns add {}", name(0)),
                                            fmt::format("ip netns add {}", name(1)),
                                            fmt::format("ip link add {} type veth peer name {}", link(0), link(1)),
                                            fmt::format("ip link set {} netns {}", link(0), name(0)),
                                            fmt::format("ip link set {} netns {}", link(1), name(1)),
                                            fmt::format("ip -n {} addr add {}/24 dev {}", name(0), address(0), link(0)),
                                            fmt::format("ip -n {} addr add {}/24 dev {}", name(1), address(1), link(1)),
                                            fmt::format("ip -n {} link set lo up", name(0)),
                                            fmt::format("ip -n {} link set lo up", name(1)),
                                            fmt::format("ip -n {} link set {} up", name(0), link(0)),
                                            fmt::format("ip -n {} link set {} up", name(1), link(1))};
    for (const auto& command : setup)
      if (std::system((command + " 2>/dev/null").c_str()) != 0) {
        why_not = fmt::format("`{}` failed (no network namespaces here)", command);
        return;
      }
    ready = true;
  }
  ~TwoHosts() {
    for (int n = 0; n < 2; ++n) std::system(fmt::format("ip netns del {} 2>/dev/null", name(n)).c_str());
  }
  TwoHosts(const TwoHosts&) = delete;
  TwoHosts& operator=(const TwoHosts&) = delete;

  std::string name(int n) const { return fmt::format("{}n{}", prefix_, n); }
  std::string address(int n) const { return fmt::format("{}.{}", subnet_, n + 1); }
  std::string link(int n) const { return fmt::format("{}{}", prefix_, n == 0 ? 'a' : 'b'); }

  /// `ip link set <node n's veth> up|down`: `down` cuts the cable between the hosts.
  bool set_link(int n, bool up) const {
    return std::system(fmt::format("ip -n {} link set {} {}", name(n), link(n), up ? "up" : "down").c_str()) == 0;
  }

  bool ready = false;
  std::string why_not;

 private:
  std::string prefix_, subnet_;
};

/// Node `n` of a 2-node run: `launch` in namespace `n`, the trainer's `command` after `--`.
inline pid_t start_node(const TwoHosts& hosts, int n, int port, const std::vector<std::string>& command,
                        const fs::path& cwd, const fs::path& log) {
  std::vector<std::string> args = {"launch",
                                   "--nnodes",
                                   "2",
                                   "--node-rank",
                                   std::to_string(n),
                                   "--nproc-per-node",
                                   "1",
                                   "--master-addr",
                                   hosts.address(0),
                                   "--master-port",
                                   std::to_string(port),
                                   "--"};
  args.insert(args.end(), command.begin(), command.end());
  fs::create_directories(cwd);
  return spawn(args, {}, log, cwd, {"ip", "netns", "exec", hosts.name(n)});
}

/// SIGKILL to `pid` and all its descendants that still run (children first seen, then killed, so
/// that none is reparented out of reach); the caller reaps `pid` itself.
inline void kill_tree(pid_t pid) {
  ::kill(pid, SIGSTOP);
  for (pid_t child : patchgcl_test::children_of(pid)) kill_tree(child);
  ::kill(pid, SIGKILL);
  ::kill(pid, SIGCONT);
}

/// The exit code of node `pid` (-signal when killed); past `timeout_s` its whole process tree is
/// killed and the test fails.
inline int wait_node(pid_t pid, double timeout_s) {
  const auto start = clock_type::now();
  while (!patchgcl_test::has_exited(pid)) {
    if (seconds_since(start) > timeout_s) {
      kill_tree(pid);
      ::waitpid(pid, nullptr, 0);
      FAIL("a node still ran after " << timeout_s << " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return patchgcl_test::exit_code(patchgcl_test::wait_status(pid));
}

/// The process trees of started nodes, killed (kill_tree) when the test leaves the scope early, so
/// that a failed test leaves no rank running.
class NodeGuard {
 public:
  void add(pid_t pid) { pids_.push_back(pid); }
  ~NodeGuard() {
    for (pid_t pid : pids_)
      if (::kill(pid, 0) == 0 && !patchgcl_test::has_exited(pid)) {
        kill_tree(pid);
        ::waitpid(pid, nullptr, 0);
      }
  }

 private:
  std::vector<pid_t> pids_;
};

/// The tiny networks of the multi-node tests.
inline std::vector<std::string> tiny_nodes(std::vector<std::string> extra) {
  std::vector<std::string> args = {"train", "--synthetic-size", "32", "--synthetic-count", "8", "--ngf", "8", "--ndf",
                                   "8",     "--n-blocks",       "1",  "--num-patches",     "32"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace trainer_tests::distributed

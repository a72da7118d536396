// Two hosts on one machine: two network namespaces joined by a veth pair (ip netns, as root), one
// trainer node in each, started as a user with two machines would: `launch --nnodes 2 --node-rank
// R --master-addr <node 0's address>`. The hostname resolves to loopback in both namespaces, as on
// a default Debian install, so the Gloo transport must find the veth interface by itself
// (dist/gloo_transport.hpp). Skipped, saying why, where namespaces cannot be made.
#include "trainer/tests/two_hosts.hpp"

using namespace trainer_tests;
using namespace trainer_tests::distributed;

TEST_CASE("Two hosts: launch --nnodes 2 with no variable set trains, and node 0 alone writes the run folder",
          "[distributed][two_hosts]") {
  TwoHosts hosts;
  if (!hosts.ready) {
    WARN("two-host test skipped: " << hosts.why_not);
    return;
  }
  TempDir dir("two_hosts");
  const auto command = tiny_nodes({"--steps", "6", "--dist-timeout", "30"});
  std::vector<pid_t> nodes;
  for (int n = 0; n < 2; ++n)
    nodes.push_back(start_node(hosts, n, 29400, command, dir.path / fmt::format("node{}", n),
                               dir.path / fmt::format("node{}.out", n)));
  for (int n = 0; n < 2; ++n) {
    INFO("node " << n << ":\n" << read_text(dir.path / fmt::format("node{}.out", n)));
    REQUIRE(wait_exit(nodes[static_cast<size_t>(n)], 180) == 0);
  }
  const auto node0 = read_text(dir.path / "node0.out"), node1 = read_text(dir.path / "node1.out");
  INFO(node0 << node1);
  // Each rank found the veth interface on MASTER_ADDR's network, not the loopback its host name resolves to.
  CHECK_THAT(node0, Catch::Contains(fmt::format("rank 0: gloo transport on {} (interface", hosts.address(0))));
  CHECK_THAT(node1, Catch::Contains(fmt::format("rank 1: gloo transport on {} (interface", hosts.address(1))));
  CHECK(loadable_checkpoint_step(dir.path / "node0" / "runs" / "demo" / "ckpt.safetensors") == 6);
  CHECK_FALSE(fs::exists(dir.path / "node1" / "runs"));
}

TEST_CASE("Two hosts: when node 1's rank is killed, node 0 exits non-zero within --dist-timeout naming rank 1",
          "[distributed][two_hosts]") {
  TwoHosts hosts;
  if (!hosts.ready) {
    WARN("two-host test skipped: " << hosts.why_not);
    return;
  }
  TempDir dir("two_hosts_lost");
  const int timeout_s = 10;
  const auto command = tiny_nodes({"--steps", "100000", "--dist-timeout", std::to_string(timeout_s)});
  std::vector<pid_t> nodes;
  for (int n = 0; n < 2; ++n)
    nodes.push_back(start_node(hosts, n, 29401, command, dir.path / fmt::format("node{}", n),
                               dir.path / fmt::format("node{}.out", n)));
  // Training has started once rank 0 logged its first step.
  const auto start = clock_type::now();
  while (last_printed_step(dir.path / "node0.out") < 1) {
    INFO(read_text(dir.path / "node0.out") << read_text(dir.path / "node1.out"));
    REQUIRE(seconds_since(start) < 120);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // `ip netns exec` became the launcher; its child is the rank.
  const auto ranks = patchgcl_test::children_of(nodes[1]);
  REQUIRE(ranks.size() == 1);
  REQUIRE(::kill(ranks[0], SIGKILL) == 0);
  const auto killed = clock_type::now();
  const int node0 = wait_exit(nodes[0], 120);
  const double took = seconds_since(killed);
  const auto out0 = read_text(dir.path / "node0.out");
  INFO(out0);
  CHECK(node0 != 0);
  CHECK(took < timeout_s + 5);
  CHECK_THAT(out0, Catch::Contains("lost rank(s) 1"));
  CHECK(wait_exit(nodes[1], 60) != 0);
}

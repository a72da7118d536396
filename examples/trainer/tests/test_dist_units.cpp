// The trainer's c10d pieces as units (dist/): torchrun's variables, the Gloo transport's interface,
// rank 0's broadcast and the bucketed gradient average, the configuration check, a lost rank, and
// `launch`. The ranks are this test executable started again (`--worker NAME`, workers.cpp) on
// 127.0.0.1 by tests/support/multi_process.hpp. The trainer binary on several processes is tested
// in test_distributed.cpp and test_dist_runs.cpp.
#include "trainer/dist/gloo_transport.hpp"
#include "trainer/dist/launch.hpp"
#include "trainer/dist/overlapped_reducer.hpp"
#include "trainer/tests/dist_helpers.hpp"

#include <cstdlib>
#include <map>

using namespace trainer_tests;
using namespace trainer_tests::distributed;

namespace {

trainer::dist::Env env_of(const std::vector<std::string>& vars) {
  std::map<std::string, std::string> m;
  for (const auto& kv : vars) m[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  return trainer::dist::read_env([&](const char* n) -> const char* {
    auto it = m.find(n);
    return it == m.end() ? nullptr : it->second.c_str();
  });
}

std::string env_error(const std::vector<std::string>& vars) {
  try {
    env_of(vars);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

/// What `--worker NAME` ranks of this executable ended with: each rank's wait status (-1: still
/// running at the timeout, then killed) and their output.
struct WorkerRun {
  std::vector<int> statuses;
  std::string outputs;
};

/// Runs `--worker NAME` as ranks 0..world-1 of this executable, rank 0 serving the store on a free port.
WorkerRun run_ranks(const std::string& name, int world, std::chrono::seconds timeout) {
  TempDir logs("dist_units_" + name);
  const auto ranks = patchgcl_test::worker_ranks(name, world, free_port(), (logs.path / "rank").string());
  auto statuses = ranks.wait(timeout);
  return {std::move(statuses), ranks.outputs()};
}

}  // namespace

TEST_CASE("torchrun's variables: none set is one process, bad values are refused naming the variable",
          "[distributed][dist_env]") {
  CHECK_FALSE(env_of({}).active);
  auto e = env_of({"RANK=1", "WORLD_SIZE=2", "LOCAL_RANK=1", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29500"});
  CHECK(e.active);
  CHECK(e.rank == 1);
  CHECK(e.world == 2);
  CHECK(e.local_rank == 1);
  CHECK(e.master_port == 29500);
  for (const auto& c : refused_torchrun_env()) CHECK_THAT(env_error(c.env), Catch::Contains(c.phrase));
}

TEST_CASE("Two ranks: rank 0's parameters are broadcast and gradients are averaged in buckets",
          "[distributed][dist_collectives]") {
  const auto run = run_ranks("collectives", 2, std::chrono::seconds(120));
  INFO(run.outputs);
  // The worker checks the values itself (workers.cpp).
  for (int s : run.statuses) REQUIRE(patchgcl_test::exited_ok(s));
}

TEST_CASE("The overlapped reducer starts buckets in order during backward and writes the average of the ranks",
          "[distributed]") {
  // One process standing in for two: the other rank holds twice this rank's gradients, so the
  // all-reduce (a fake launch here) gives 3g and the average 1.5g.
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Linear(8, 64), torch::nn::ReLU(), torch::nn::Linear(64, 64), torch::nn::ReLU(),
                            torch::nn::Linear(64, 64), torch::nn::ReLU(), torch::nn::Linear(64, 4));
  std::vector<int64_t> launched;  // bucket sizes (elements) in launch order
  auto make = [&](const std::vector<torch::Tensor>& params) {
    // First bucket at most 2 KiB, the others 16640 bytes: reversed, the buckets are
    // [extra,] last bias, last weight, third bias | third weight, second bias | second weight,
    // first bias | first weight.
    return std::make_unique<trainer::dist::OverlappedReducer>(
        params, 2,
        [&](torch::Tensor& flat) -> trainer::dist::OverlappedReducer::Wait {
          launched.push_back(flat.numel());
          return [flat]() mutable { flat.mul_(3); };
        },
        2048, 64 * 64 * 4 + 64 * 4);
  };
  auto x = torch::randn({5, 8});
  const auto expected = [&] {
    net->zero_grad();
    net->forward(x).pow(2).sum().backward();
    std::vector<torch::Tensor> g;
    for (auto& p : net->parameters()) g.push_back(p.grad().clone());
    return g;
  }();
  auto check_average = [&] {
    auto ps = net->parameters();
    for (size_t i = 0; i < ps.size(); ++i) CHECK(torch::allclose(ps[i].grad(), 1.5 * expected[i]));
  };

  // Every parameter gets its gradient: each bucket starts from the hooks, during backward, the
  // last layer's first.
  auto reducer = make(net->parameters());
  CHECK(reducer->bucket_count() == 4);
  for (int step = 0; step < 2; ++step) {  // the hooks serve every step
    launched.clear();
    net->zero_grad();
    reducer->begin();
    net->forward(x).pow(2).sum().backward();
    CHECK(reducer->started() == 4);  // before finish()
    CHECK(launched == std::vector<int64_t>{4 + 4 * 64 + 64, 64 * 64 + 64, 64 * 64 + 64, 64 * 8});
    CHECK(reducer->finish() == (64 * 8 + 64 + 2 * (64 * 64 + 64) + 4 * 64 + 4) * 4);
    check_average();
  }

  // A parameter without a gradient holds its bucket, and so every later one, until finish(),
  // which averages it as zero.
  auto unused = torch::zeros({3}, torch::requires_grad());
  auto params = net->parameters();
  params.push_back(unused);
  reducer = make(params);
  launched.clear();
  net->zero_grad();
  reducer->begin();
  net->forward(x).pow(2).sum().backward();
  CHECK(reducer->started() == 0);
  CHECK(reducer->finish() == (64 * 8 + 64 + 2 * (64 * 64 + 64) + 4 * 64 + 4 + 3) * 4);
  CHECK(launched.size() == 4);
  check_average();
  CHECK(unused.grad().abs().sum().item<double>() == 0);

  // A backward outside begin/finish leaves the reducer alone; finish without begin is an error.
  net->forward(x).sum().backward();
  CHECK_THROWS_WITH(reducer->finish(), Catch::Contains("finish without begin"));
}

TEST_CASE("Ranks started with different options all stop naming the differing rank", "[distributed][dist_config]") {
  const auto run = run_ranks("config", 2, std::chrono::seconds(120));
  INFO(run.outputs);
  // The worker exits 3 when the check threw the expected message, 0 when it did not throw.
  for (int s : run.statuses) {
    REQUIRE(s >= 0);
    REQUIRE(WIFEXITED(s));
    CHECK(WEXITSTATUS(s) == 3);
  }
}

TEST_CASE("When a rank is killed (SIGKILL), the other stops non-zero naming the lost rank within the timeout",
          "[distributed][dist_lost]") {
  const auto start = std::chrono::steady_clock::now();
  const auto run = run_ranks("lost", 2, std::chrono::seconds(120));
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(run.outputs);
  const auto& statuses = run.statuses;
  REQUIRE(statuses[1] >= 0);
  CHECK(WIFSIGNALED(statuses[1]));
  REQUIRE(statuses[0] >= 0);
  REQUIRE(WIFEXITED(statuses[0]));
  CHECK(WEXITSTATUS(statuses[0]) == 3);  // rank 0 saw an error naming rank 1 (workers.cpp)
  CHECK(took < 60);                      // --dist-timeout of the worker: 30 s
}

TEST_CASE("launch starts the ranks with torchrun's variables and exits with a failing rank's code",
          "[distributed][launch]") {
  trainer::launch::LaunchOptions o;
  o.nproc_per_node = 2;
  o.args = {"--worker", "launched"};
  CHECK(trainer::launch::run(o, trainer::launch::self_exe()) == 0);
  setenv("PATCHGCL_TEST_FAIL_RANK", "1", 1);
  CHECK(trainer::launch::run(o, trainer::launch::self_exe()) == 7);
  unsetenv("PATCHGCL_TEST_FAIL_RANK");

  auto bad = o;
  bad.node_rank = 1;
  CHECK_THROWS_WITH(trainer::launch::validate(bad),
                    Catch::Contains("--node-rank must be in [0, --nnodes = 1) (got 1)"));
  bad = o;
  bad.nnodes = 2;
  CHECK_THROWS_WITH(trainer::launch::validate(bad), Catch::Contains("--master-port must be set when --nnodes > 1"));
  bad = o;
  bad.nproc_per_node = 0;
  CHECK_THROWS_WITH(trainer::launch::validate(bad), Catch::Contains("--nproc-per-node must be at least 1 (got 0)"));
  bad = o;
  bad.args.clear();
  CHECK_THROWS_WITH(trainer::launch::validate(bad), Catch::Contains("after `--`"));
}

TEST_CASE(
    "The Gloo transport: GLOO_SOCKET_IFNAME, a loopback master, the host name, MASTER_ADDR's network, the default "
    "route",
    "[distributed][gloo_transport]") {
  using trainer::dist::choose_gloo_transport;
  using trainer::dist::Ipv4Interface;
  const auto ip = [](const char* a) { return *trainer::dist::resolve_ipv4(a); };
  const std::vector<Ipv4Interface> interfaces = {{"lo", ip("127.0.0.1"), ip("255.0.0.0")},
                                                 {"eth0", ip("10.0.0.5"), ip("255.255.255.0")},
                                                 {"veth1", ip("10.77.0.2"), ip("255.255.255.0")}};
  // GLOO_SOCKET_IFNAME wins, one device per name; a name the machine lacks is refused naming the ones it has.
  auto t = choose_gloo_transport("10.77.0.1", "veth1,eth0", "127.0.1.1", interfaces, "eth0");
  CHECK(t.interfaces == std::vector<std::string>{"veth1", "eth0"});
  CHECK(t.address == "10.77.0.2");
  CHECK_THROWS_WITH(choose_gloo_transport("10.77.0.1", "wlan0", "127.0.1.1", interfaces, "eth0"),
                    Catch::Contains("GLOO_SOCKET_IFNAME names 'wlan0', which is not an IPv4 interface of this machine "
                                    "(it has: lo, eth0, veth1)"));
  // Every rank on this machine: loopback.
  t = choose_gloo_transport("127.0.0.1", nullptr, "10.0.0.5", interfaces, "eth0");
  CHECK(t.hostname == "127.0.0.1");
  CHECK(t.interfaces.empty());
  // The host name's address, when it is one of this machine's.
  t = choose_gloo_transport("10.77.0.1", "", "10.0.0.5", interfaces, "eth0");
  CHECK(t.hostname == "10.0.0.5");
  CHECK(t.address == "10.0.0.5");
  // A host name on loopback (Debian's /etc/hosts) or elsewhere: the interface on MASTER_ADDR's network.
  for (const char* host : {"127.0.1.1", "10.200.0.9"}) {
    t = choose_gloo_transport("10.77.0.1", nullptr, host, interfaces, "eth0");
    CHECK(t.interfaces == std::vector<std::string>{"veth1"});
    CHECK(t.address == "10.77.0.2");
    CHECK_THAT(t.why, Catch::Contains("its network holds MASTER_ADDR 10.77.0.1"));
  }
  // The master is this machine's own address (node 0).
  t = choose_gloo_transport("10.77.0.2", nullptr, "127.0.1.1", interfaces, std::nullopt);
  CHECK(t.interfaces == std::vector<std::string>{"veth1"});
  // A master on no network of ours: the default route's interface; none: an error naming the remedy.
  t = choose_gloo_transport("192.168.7.7", nullptr, "127.0.1.1", interfaces, "eth0");
  CHECK(t.interfaces == std::vector<std::string>{"eth0"});
  CHECK_THAT(t.why, Catch::Contains("the default route"));
  CHECK_THROWS_WITH(choose_gloo_transport("192.168.7.7", nullptr, "127.0.1.1", interfaces, std::nullopt),
                    Catch::Contains("set GLOO_SOCKET_IFNAME"));
}

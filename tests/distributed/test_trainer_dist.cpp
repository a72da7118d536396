// The example trainer's c10d helpers (examples/trainer/distributed.hpp): torchrun's variables,
// bucketed gradient averaging, rank 0's broadcast, the configuration check, a lost rank and
// an unreachable master. The trainer's own multi-process runs are in test_trainer_runs.cpp.

#include "process.hpp"

#include "distributed.hpp"  // examples/trainer
#include "launch.hpp"       // examples/trainer

#include <cstdlib>

#include <catch2/catch.hpp>

#include <map>

using namespace patchgcl_test;

namespace {

trainer::dist::Env env_of(const std::map<std::string, std::string>& vars) {
  return trainer::dist::read_env([&](const char* n) -> const char* {
    auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string env_error(const std::map<std::string, std::string>& vars) {
  try {
    env_of(vars);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

/// Runs `--worker NAME` as ranks 0..world-1 (rank 0 picks the port); returns their wait statuses
/// and the stderr-free stdout of rank 0 after the PORT line.
std::vector<int> run_ranks(const std::string& name, int world, const std::vector<std::string>& extra,
                           std::chrono::seconds timeout) {
  const auto exe = self_exe();
  auto args = [&](int r, const std::string& port) {
    std::vector<std::string> a{exe, "--worker", name, "--rank", std::to_string(r), "--world", std::to_string(world),
                               "--port", port};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto rank0 = spawn(args(0, "0"), {}, true);
  const auto line = read_line(rank0.stdout_fd, std::chrono::seconds(60));
  REQUIRE(line.rfind("PORT ", 0) == 0);
  std::vector<Child> children{rank0};
  for (int r = 1; r < world; ++r) children.push_back(spawn(args(r, line.substr(5))));
  std::vector<int> statuses;
  for (auto& c : children) statuses.push_back(wait_for(c.pid, timeout));
  close(rank0.stdout_fd);
  return statuses;
}

}  // namespace

TEST_CASE("torchrun's variables: none set is one process, bad values are refused naming the variable",
          "[distributed][trainer_env]") {
  CHECK_FALSE(env_of({}).active);
  auto e = env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"},
                   {"MASTER_PORT", "29500"}});
  CHECK(e.active);
  CHECK(e.rank == 1);
  CHECK(e.world == 2);
  CHECK(e.local_rank == 1);
  CHECK(e.master_port == 29500);
  const std::map<std::string, std::string> ok{
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = ok;
    m[k] = v;
    return m;
  };
  auto without = [&](const std::string& k) {
    auto m = ok;
    m.erase(k);
    return m;
  };
  CHECK_THAT(env_error(with("RANK", "2")), Catch::Contains("RANK must be in [0, WORLD_SIZE = 2), got 2"));
  CHECK_THAT(env_error(without("MASTER_PORT")), Catch::Contains("MASTER_PORT is not set"));
  CHECK_THAT(env_error(with("MASTER_PORT", "http")), Catch::Contains("MASTER_PORT must be a port number in [1, 65535], got 'http'"));
  CHECK_THAT(env_error(with("MASTER_PORT", "70000")), Catch::Contains("got '70000'"));
  CHECK_THAT(env_error(with("WORLD_SIZE", "0")), Catch::Contains("WORLD_SIZE must be a whole number >= 1, got '0'"));
  CHECK_THAT(env_error(with("RANK", "-1")), Catch::Contains("RANK must be a whole number >= 0, got '-1'"));
}

TEST_CASE("An unreachable master is an error naming it within the timeout", "[distributed][trainer_env]") {
  // A port that was just free: a store on port 0, closed again.
  uint16_t port = 0;
  {
    auto s = patchgcl::distributed::connect_store("127.0.0.1", 0, 0, 1, std::chrono::milliseconds(5000));
    port = s->getPort();
  }
  trainer::dist::Env env;
  env.active = true;
  env.rank = 1;
  env.world = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    trainer::dist::Context ctx(env, trainer::dist::Backend::kGloo, torch::kCPU, std::chrono::seconds(3));
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK_THAT(message, Catch::Contains("cannot reach the master at 127.0.0.1:" + std::to_string(port)));
  CHECK(took < 30);
}

TEST_CASE("Two ranks: rank 0's parameters are broadcast and gradients are averaged in buckets",
          "[distributed][trainer_collectives]") {
  auto statuses = run_ranks("collectives", 2, {}, std::chrono::seconds(120));
  for (int s : statuses) REQUIRE(exited_ok(s));  // the worker checks the values itself (workers.cpp)
}

TEST_CASE("Ranks started with different options all stop naming the differing rank",
          "[distributed][trainer_config]") {
  auto statuses = run_ranks("config", 2, {}, std::chrono::seconds(120));
  // The worker exits 3 when the check threw the expected message, 0 when it did not throw.
  for (int s : statuses) {
    REQUIRE(s >= 0);
    REQUIRE(WIFEXITED(s));
    CHECK(WEXITSTATUS(s) == 3);
  }
}

TEST_CASE("When a rank is killed (SIGKILL), the other stops non-zero naming the lost rank within the timeout",
          "[distributed][trainer_lost]") {
  const auto start = std::chrono::steady_clock::now();
  auto statuses = run_ranks("lost", 2, {}, std::chrono::seconds(120));
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(statuses[1] >= 0);
  CHECK(WIFSIGNALED(statuses[1]));
  REQUIRE(statuses[0] >= 0);
  REQUIRE(WIFEXITED(statuses[0]));
  CHECK(WEXITSTATUS(statuses[0]) == 3);  // rank 0 saw an error naming rank 1 (workers.cpp)
  CHECK(took < 60);                       // --dist-timeout of the worker: 30 s
}

TEST_CASE("launch starts the ranks with torchrun's variables and exits with a failing rank's code",
          "[distributed][launch]") {
  trainer::launch::LaunchOptions o;
  o.nproc_per_node = 2;
  o.args = {"--worker", "launched"};
  CHECK(trainer::launch::run(o, self_exe()) == 0);
  setenv("PATCHGCL_TEST_FAIL_RANK", "1", 1);
  CHECK(trainer::launch::run(o, self_exe()) == 7);
  unsetenv("PATCHGCL_TEST_FAIL_RANK");

  auto bad = o;
  bad.node_rank = 1;
  CHECK_THROWS_WITH(trainer::launch::validate(bad), Catch::Contains("--node-rank must be in [0, --nnodes = 1) (got 1)"));
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

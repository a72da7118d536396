// Weak scaling (hidden: `patchgcl_distributed_tests "[bench]"`, never in ctest; speed is measured,
// not asserted): steps/s of 1 vs 2 processes at a fixed per-process batch, 1 thread each, and the
// bytes all-reduced per step. docs/distributed.md has the numbers.

#include "process.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>

using namespace patchgcl_test;

namespace {

/// Rank 0's "RESULT <steps/s> <bytes>" of a `world`-rank bench run.
std::pair<double, long long> bench_run(int world, int steps, int batch) {
  const auto exe = self_exe();
  auto args = [&](int r, const std::string& port) {
    return std::vector<std::string>{exe, "--worker", "bench", "--rank", std::to_string(r), "--world",
                                    std::to_string(world), "--port", port, "--steps", std::to_string(steps),
                                    "--batch", std::to_string(batch)};
  };
  auto rank0 = spawn(args(0, "0"), {}, true);
  const auto port = read_line(rank0.stdout_fd, std::chrono::seconds(60));
  REQUIRE(port.rfind("PORT ", 0) == 0);
  std::vector<Child> others;
  for (int r = 1; r < world; ++r) others.push_back(spawn(args(r, port.substr(5))));
  const auto result = read_line(rank0.stdout_fd, std::chrono::seconds(600));
  REQUIRE(exited_ok(wait_for(rank0.pid, std::chrono::seconds(60))));
  for (auto& c : others) REQUIRE(exited_ok(wait_for(c.pid, std::chrono::seconds(60))));
  close(rank0.stdout_fd);
  std::istringstream in(result);
  std::string tag;
  double steps_per_s = 0;
  long long bytes = 0;
  in >> tag >> steps_per_s >> bytes;
  REQUIRE(tag == "RESULT");
  return {steps_per_s, bytes};
}

}  // namespace

TEST_CASE("Weak scaling of the contrastive step: 1 vs 2 processes, 1 thread each", "[.][bench]") {
  const int steps = 20, batch = 1;
  const auto one = bench_run(1, steps, batch);
  const auto two = bench_run(2, steps, batch);
  std::printf("weak scaling, GraphNCELoss step (forward + backward + gradient average + Adam), per-process batch %d, "
              "1 thread per process, %d steps\n",
              batch, steps);
  std::printf("  1 process : %.3f steps/s, %lld bytes all-reduced per step\n", one.first, one.second);
  std::printf("  2 processes: %.3f steps/s (each), %lld bytes all-reduced per step\n", two.first, two.second);
  std::printf("  efficiency (2-process steps/s / 1-process steps/s): %.1f%%\n", 100.0 * two.first / one.first);
}

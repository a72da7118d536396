// Weak scaling (hidden: `patchgcl_distributed_tests "[bench]"`, never in ctest; speed is measured,
// not asserted): steps/s of 1 vs 2 processes at a fixed per-process batch, 1 thread each, and the
// bytes all-reduced per step. docs/distributed.md has the numbers.

#include <support/multi_process.hpp>
#include <support/temp_dir.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>

using namespace patchgcl_test;

namespace {

/// Rank 0's "RESULT <steps/s> <bytes>" of a `world`-rank bench run.
std::pair<double, long long> bench_run(int world, int steps, int batch) {
  TempDir dir("bench");
  const auto ranks = worker_ranks("bench", world, /*port=*/0, (dir.path / "rank").string(),
                                  {"--steps", std::to_string(steps), "--batch", std::to_string(batch)});
  const auto result = ranks.line(0, "RESULT ", std::chrono::seconds(600));
  const auto statuses = ranks.wait(std::chrono::seconds(60));
  INFO(ranks.outputs());
  for (int status : statuses) REQUIRE(exited_ok(status));
  std::istringstream in(result);
  double steps_per_s = 0;
  long long bytes = 0;
  in >> steps_per_s >> bytes;
  REQUIRE_FALSE(in.fail());
  return {steps_per_s, bytes};
}

}  // namespace

TEST_CASE("Weak scaling of the contrastive step: 1 vs 2 processes, 1 thread each", "[.][bench]") {
  const int steps = 20, batch = 1;
  const auto one = bench_run(1, steps, batch);
  const auto two = bench_run(2, steps, batch);
  std::printf(
      "weak scaling, GraphNCELoss step (forward + backward + gradient average + Adam), per-process batch %d, "
      "1 thread per process, %d steps\n",
      batch, steps);
  std::printf("  1 process : %.3f steps/s, %lld bytes all-reduced per step\n", one.first, one.second);
  std::printf("  2 processes: %.3f steps/s (each), %lld bytes all-reduced per step\n", two.first, two.second);
  std::printf("  efficiency (2-process steps/s / 1-process steps/s): %.1f%%\n", 100.0 * two.first / one.first);
}

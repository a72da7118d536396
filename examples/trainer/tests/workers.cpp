// The ranks of the trainer's multi-process unit tests (test_dist_units.cpp): this test executable
// started again as `--worker NAME --rank R --world W --port P` (main.cpp dispatches). Each worker
// checks its own results and tells the test by its exit code.

#include "trainer/dist/process_group.hpp"
#include "trainer/tests/worker_context.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

namespace {

using patchgcl_test::WorkerArgs;
using trainer_tests::worker_context;

/// Broadcast of rank 0's values and the bucketed average, checked here against the closed form.
int collectives(const WorkerArgs& a) {
  auto ctx = worker_context(a, std::chrono::seconds(60));
  const int r = ctx->rank(), w = ctx->world();
  // Three parameters; a 32-byte bucket limit (and the dtype change) gives three buckets.
  std::vector<torch::Tensor> params{torch::full({4}, 10.0 * (r + 1)), torch::full({2, 3}, 20.0 * (r + 1)),
                                    torch::full({5}, 30.0 * (r + 1), torch::kFloat64)};
  ctx->broadcast(params);
  for (size_t i = 0; i < params.size(); ++i)
    if (!params[i].eq(10.0 * (i + 1)).all().item<bool>()) throw std::runtime_error("broadcast: not rank 0's values");
  for (auto& p : params) {
    p.requires_grad_(true);
    p.mutable_grad() = torch::full_like(p, static_cast<double>(r + 1));
  }
  const auto bytes = ctx->average_gradients(params, 32);
  const double mean = (w + 1) / 2.0;
  for (auto& p : params)
    if (!p.grad().eq(mean).all().item<bool>()) throw std::runtime_error("average_gradients: wrong mean");
  if (bytes != 4 * 4 + 6 * 4 + 5 * 8) throw std::runtime_error("average_gradients: wrong byte count");
  return 0;
}

/// Rank 1 runs with another configuration text: every rank must throw naming rank 1 (exit 3).
int config(const WorkerArgs& a) {
  auto ctx = worker_context(a, std::chrono::seconds(60));
  try {
    ctx->check_same_config(ctx->rank() == 1 ? "steps=20\nlr=0.1\n" : "steps=20\nlr=0.2\n");
  } catch (const std::runtime_error& e) {
    std::cerr << e.what() << "\n";
    return std::string(e.what()).find("rank(s) 1 differ from rank 0") != std::string::npos ? 3 : 4;
  }
  return 0;
}

/// Rank 1 kills itself (SIGKILL) after the first barrier; rank 0 keeps reducing and must fail
/// with a message naming rank 1 (exit 3).
int lost(const WorkerArgs& a) {
  auto ctx = worker_context(a, std::chrono::seconds(30));
  ctx->barrier();
  if (ctx->rank() == 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::raise(SIGKILL);
  }
  try {
    for (int i = 0; i < 100000; ++i) ctx->barrier();
  } catch (const std::runtime_error& e) {
    std::cerr << e.what() << "\n";
    return std::string(e.what()).find("lost rank(s) 1") != std::string::npos ? 3 : 4;
  }
  return 0;
}

/// A rank started by `launch`: torchrun's variables, the launcher's store, one barrier; the
/// rank named by PATCHGCL_TEST_FAIL_RANK then exits with code 7.
int launched() {
  auto env = trainer::dist::read_env();
  if (!env.active || !env.agent_store) throw std::runtime_error("launched: torchrun's variables are not set");
  trainer::dist::Context ctx(env, trainer::dist::Backend::kGloo, torch::kCPU, std::chrono::seconds(30));
  ctx.barrier();
  const char* fail = std::getenv("PATCHGCL_TEST_FAIL_RANK");
  return fail && std::stoi(fail) == ctx.rank() ? 7 : 0;
}

}  // namespace

int run_worker(int argc, char** argv) {
  return patchgcl_test::worker_main(
      argc, argv,
      {{"collectives", collectives}, {"config", config}, {"lost", lost}, {"launched", [](const WorkerArgs&) {
                                                                            return launched();
                                                                          }}});
}

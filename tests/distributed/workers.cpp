// The ranks of the multi-process tests (tests/support/multi_process.hpp starts them):
// `--worker negatives --rank R --world W --port P --out DIR` and the bench's
// `--worker bench ... --steps K --batch B`. Rank 0 serves the TCPStore; with port 0 the OS picks a
// free one, which rank 0 announces for the test to start the other ranks with.

#include "scenarios.hpp"

#include <patchgcl/distributed.hpp>

#include "trainer/tests/worker_context.hpp"  // the bench averages gradients as the trainer does

#include <support/multi_process.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace {

using patchgcl_test::WorkerArgs;

int negatives(const WorkerArgs& a) {
  const int rank = std::stoi(a.at("--rank")), world = std::stoi(a.at("--world"));
  const auto port = static_cast<uint16_t>(std::stoi(a.at("--port")));
  const std::chrono::milliseconds timeout(60000);
  torch::set_num_threads(1);
  auto store = patchgcl::distributed::connect_store("127.0.0.1", port, rank, world, timeout);
  if (rank == 0 && port == 0) patchgcl_test::announce_port(store->getPort());
  auto group = patchgcl::distributed::make_gloo_group(store, rank, world, timeout, "127.0.0.1");
  auto keys = patchgcl::distributed::key_all_gather(group);
  for (const auto& s : patchgcl_test::scenarios()) {
    auto r = patchgcl_test::run_scenario(s, world, rank, keys);
    std::vector<torch::Tensor> out{r.loss.detach(), r.input_grad};
    out.insert(out.end(), r.param_grads.begin(), r.param_grads.end());
    torch::save(out, a.at("--out") + "/" + s + "_rank" + std::to_string(rank) + ".pt");
  }
  return 0;
}

/// Weak-scaling benchmark rank: `--steps K --batch B`, one thread. Each step is GraphNCELoss's
/// forward and backward on fixed [B, 128, 32, 32] / [B, 256, 16, 16] features (a trainer's
/// contrastive term at CUT's encoder sizes), the bucketed gradient average of its heads and an
/// Adam step. Rank 0 prints "RESULT <steps/s> <bytes all-reduced per step>".
int bench(const WorkerArgs& a) {
  torch::set_num_threads(1);
  const int64_t steps = std::stoll(a.at("--steps")), batch = std::stoll(a.at("--batch"));
  auto ctx = trainer_tests::worker_context(a, std::chrono::seconds(60));
  torch::manual_seed(ctx->rank());
  std::vector<torch::Tensor> out{torch::randn({batch, 128, 32, 32}), torch::randn({batch, 256, 16, 16})};
  std::vector<torch::Tensor> in{torch::randn({batch, 128, 32, 32}), torch::randn({batch, 256, 16, 16})};
  for (auto& t : out) t.requires_grad_(true);
  torch::manual_seed(0);
  patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions({128, 256}));
  ctx->broadcast(loss->parameters());
  torch::optim::Adam opt(loss->parameters(), torch::optim::AdamOptions(2e-4));
  int64_t bytes = 0;
  auto step = [&](int64_t s) {
    torch::manual_seed(1000 + s);
    opt.zero_grad();
    loss->forward(out, in).backward();
    bytes = ctx->average_gradients(loss->parameters());
    opt.step();
  };
  for (int64_t s = 0; s < 2; ++s) step(s);  // warm-up
  ctx->barrier();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) step(s);
  ctx->barrier();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ctx->rank() == 0) {
    std::printf("RESULT %.4f %lld\n", static_cast<double>(steps) / secs, static_cast<long long>(bytes));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int run_worker(int argc, char** argv) {
  return patchgcl_test::worker_main(argc, argv, {{"negatives", negatives}, {"bench", bench}});
}

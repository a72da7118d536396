// The ranks of the multi-process tests: `--worker negatives --rank R --world W --port P --out DIR`.
// Rank 0 serves the TCPStore; with port 0 the OS picks a free one, which rank 0 prints as
// "PORT <n>" on stdout for the test to start the other ranks with.

#include "scenarios.hpp"

#include <patchgcl/distributed.hpp>

#include "trainer/dist/process_group.hpp"  // the bench averages gradients as the trainer does

#include <csignal>
#include <thread>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

namespace {

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 2; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  return a;
}

int negatives(std::map<std::string, std::string>& a) {
  const int rank = std::stoi(a.at("--rank")), world = std::stoi(a.at("--world"));
  const auto port = static_cast<uint16_t>(std::stoi(a.at("--port")));
  const std::chrono::milliseconds timeout(60000);
  torch::set_num_threads(1);
  auto store = patchgcl::distributed::connect_store("127.0.0.1", port, rank, world, timeout);
  if (rank == 0) {
    std::printf("PORT %d\n", static_cast<int>(store->getPort()));
    std::fflush(stdout);
  }
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

trainer::dist::Env worker_env(std::map<std::string, std::string>& a) {
  trainer::dist::Env e;
  e.active = true;
  e.rank = std::stoi(a.at("--rank"));
  e.world = std::stoi(a.at("--world"));
  e.master_addr = "127.0.0.1";
  e.master_port = static_cast<uint16_t>(std::stoi(a.at("--port")));
  return e;
}

/// For rank 0 with port 0: serve the store first and print its port, then build the context
/// against it (the port is only known once the store listens).
std::unique_ptr<trainer::dist::Context> worker_context(std::map<std::string, std::string>& a,
                                                       std::chrono::seconds timeout) {
  auto env = worker_env(a);
  c10::intrusive_ptr<c10d::TCPStore> agent;
  if (env.rank == 0 && env.master_port == 0) {
    agent = patchgcl::distributed::connect_store("127.0.0.1", 0, 0, env.world,
                                                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    env.master_port = agent->getPort();
    env.agent_store = true;
    std::printf("PORT %d\n", static_cast<int>(env.master_port));
    std::fflush(stdout);
  }
  static c10::intrusive_ptr<c10d::TCPStore> keep;  // the served store lives as long as the worker
  keep = agent;
  return std::make_unique<trainer::dist::Context>(env, trainer::dist::Backend::kGloo, torch::kCPU, timeout);
}

/// Weak-scaling benchmark rank: `--steps K --batch B`, one thread. Each step is GraphNCELoss's
/// forward and backward on fixed [B, 128, 32, 32] / [B, 256, 16, 16] features (a trainer's
/// contrastive term at CUT's encoder sizes), the bucketed gradient average of its heads and an
/// Adam step. Rank 0 prints "RESULT <steps/s> <bytes all-reduced per step>".
int bench(std::map<std::string, std::string>& a) {
  torch::set_num_threads(1);
  const int64_t steps = std::stoll(a.at("--steps")), batch = std::stoll(a.at("--batch"));
  auto ctx = worker_context(a, std::chrono::seconds(60));
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
  try {
    const std::string name = argc > 2 ? argv[2] : "";
    auto a = parse(argc - 1, argv + 1);  // the pairs after `--worker NAME`
    if (name == "negatives") return negatives(a);
    if (name == "bench") return bench(a);
    std::cerr << "unknown worker '" << name << "'\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "worker failed: " << e.what() << "\n";
    return 1;
  }
}

// The ranks of the multi-process tests: `--worker negatives --rank R --world W --port P --out DIR`.
// Rank 0 serves the TCPStore; with port 0 the OS picks a free one, which rank 0 prints as
// "PORT <n>" on stdout for the test to start the other ranks with.

#include "scenarios.hpp"

#include <patchgcl/distributed.hpp>

#include "distributed.hpp"  // examples/trainer

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

/// Broadcast of rank 0's values and the bucketed average, checked here against the closed form.
int collectives(std::map<std::string, std::string>& a) {
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
int config(std::map<std::string, std::string>& a) {
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
int lost(std::map<std::string, std::string>& a) {
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
    if (name == "collectives") return collectives(a);
    if (name == "config") return config(a);
    if (name == "lost") return lost(a);
    if (name == "launched") return launched();
    if (name == "bench") return bench(a);
    std::cerr << "unknown worker '" << name << "'\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "worker failed: " << e.what() << "\n";
    return 1;
  }
}

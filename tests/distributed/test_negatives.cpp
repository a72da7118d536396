// Negatives from every process: one process equals the plain loss, and 2 Gloo processes equal
// one process on the concatenated batch with minibatch-wide negatives (loss and gradients).

#include "scenarios.hpp"

#include <support/multi_process.hpp>
#include <support/temp_dir.hpp>

#include <patchgcl/distributed.hpp>

#include <catch2/catch.hpp>

#include <algorithm>

using namespace patchgcl_test;

namespace {

void require_close(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
  INFO(what << ": max |difference| " << (actual - expected).abs().max().item<double>() << ", max |expected| "
            << expected.abs().max().item<double>());
  REQUIRE(actual.sizes() == expected.sizes());
  // float32, two summation orders (the two sides take different paths through the loss: the
  // layer-by-layer one for negatives from all processes, the fused one for the plain loss):
  // the absolute tolerance scales with the tensor's largest entry.
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  REQUIRE(torch::allclose(actual, expected, /*rtol=*/1e-5, /*atol=*/1e-6 * scale));
}

}  // namespace

TEST_CASE("With one process, negatives from all processes equal the plain loss with minibatch-wide negatives",
          "[distributed][negatives]") {
  const std::chrono::milliseconds timeout(30000);
  auto store = patchgcl::distributed::connect_store("127.0.0.1", 0, 0, 1, timeout);
  auto group = patchgcl::distributed::make_gloo_group(store, 0, 1, timeout, "127.0.0.1");
  auto keys = patchgcl::distributed::key_all_gather(group);
  for (const auto& s : scenarios()) {
    auto distributed = run_scenario(s, 1, 0, keys);
    auto plain = run_scenario(s, 1, 0, nullptr);
    require_close(distributed.loss, plain.loss, s + " loss");
    require_close(distributed.input_grad, plain.input_grad, s + " d loss / d output");
    for (size_t p = 0; p < plain.param_grads.size(); ++p)
      require_close(distributed.param_grads[p], plain.param_grads[p], s + " parameter gradient " + std::to_string(p));
  }
}

TEST_CASE("Two Gloo processes with cross-process negatives equal one process on the concatenated batch",
          "[distributed][negatives]") {
  constexpr int world = 2;
  TempDir dir("negatives");
  const auto processes =
      worker_ranks("negatives", world, /*port=*/0, (dir.path / "rank").string(), {"--out", dir.path.string()});
  {
    const auto statuses = processes.wait(std::chrono::seconds(120));
    INFO(processes.outputs());
    for (int status : statuses) REQUIRE(exited_ok(status));
  }

  for (const auto& s : scenarios()) {
    auto single = run_scenario(s, world, 0, nullptr);
    std::vector<std::vector<torch::Tensor>> ranks(world);
    for (int r = 0; r < world; ++r)
      torch::load(ranks[r], (dir.path / (s + "_rank" + std::to_string(r) + ".pt")).string());
    // The global loss is the mean of the processes' losses; data-parallel training averages
    // the gradients, and each process's d loss / d (its outputs) is world x its share.
    require_close((ranks[0][0] + ranks[1][0]) / world, single.loss, s + " loss");
    require_close(torch::cat({ranks[0][1], ranks[1][1]}) / world, single.input_grad, s + " d loss / d output");
    for (size_t p = 0; p < single.param_grads.size(); ++p)
      require_close((ranks[0][2 + p] + ranks[1][2 + p]) / world, single.param_grads[p],
                    s + " parameter gradient " + std::to_string(p));
  }
}

TEST_CASE("connect_store: rank 0 serves the store, or connects to one a launcher serves", "[distributed][store]") {
  const std::chrono::milliseconds timeout(30000);
  auto served = patchgcl::distributed::connect_store("127.0.0.1", 0, 0, 2, timeout);
  const auto port = static_cast<uint16_t>(served->getPort());
  REQUIRE(port != 0);
  // torchrun's agent store: rank 0 is a client like the others, and sees what the server holds.
  served->set("key", std::vector<uint8_t>{7, 8});
  auto client = patchgcl::distributed::connect_store("127.0.0.1", port, 0, 2, timeout, /*rank0_serves=*/false);
  CHECK(client->get("key") == std::vector<uint8_t>{7, 8});
  CHECK_THROWS_WITH(patchgcl::distributed::connect_store("127.0.0.1", 0, 0, 2, timeout, /*rank0_serves=*/false),
                    Catch::Contains("rank 0 needs the master's port, got 0"));
  CHECK_THROWS_WITH(patchgcl::distributed::connect_store("127.0.0.1", port, 2, 2, timeout),
                    Catch::Contains("`rank` must be in [0, world = 2), got 2"));
}

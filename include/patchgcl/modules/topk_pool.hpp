#pragma once

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/topk_pool.hpp>
#include <patchgcl/options/topk_pool.hpp>

#include <ostream>

namespace patchgcl {

/// Top-K graph pooling (Gao & Ji 2019), Eq. 5-8: a learnable vector `p` scores every node of
/// the *input* graph, `S = p^T Z (+ b)`; the `K` best nodes are kept in both graphs, weighted
/// by `sigma(S)` of the input graph, and the pooled graphs share `A_p`.
///
/// `output` (`V`, the output graph) and `input` (`Z`, the input graph, which is scored) are
/// `[B, N, C]` or `[N, C]`; `adjacency` is the unnormalised `A` (`[B, N, N]` or `[N, N]`).
/// Gradients reach `p` through the scores. Unbatched inputs give unbatched outputs. The
/// computation is `functional::topk_pool` with `p` (`proj`).
///
///   TopKPool pool(TopKPoolOptions(256).k(64));
///   auto pooled = pool(V, Z, A);  // pooled.output, pooled.input, pooled.adjacency
class TopKPoolImpl : public torch::nn::Cloneable<TopKPoolImpl> {
 public:
  explicit TopKPoolImpl(int64_t in_channels) : TopKPoolImpl(TopKPoolOptions(in_channels)) {}
  explicit TopKPoolImpl(const TopKPoolOptions& options_) : options(options_) { reset(); }

  void reset() override {
    TORCH_CHECK(options.in_channels() >= 1, "TopKPool: `in_channels` must be >= 1, got ", options.in_channels());
    functional::detail::check_topk_pool_options(options, "TopKPool");
    detail::check_non_negative(options.init_std(), "TopKPool", "init_std");
    proj = register_module("proj",
                           torch::nn::Linear(torch::nn::LinearOptions(options.in_channels(), 1).bias(options.bias())));
    reset_parameters();
  }

  void reset_parameters() {
    torch::NoGradGuard no_grad;
    proj->weight.normal_(0.0, options.init_std());
    if (options.bias()) proj->bias.zero_();
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "patchgcl::TopKPool(" << options.in_channels() << ", ";
    if (options.k()) stream << "k=" << *options.k();
    else stream << "ratio=" << options.ratio();
    stream << ", activation=" << (options.activation() == ScoreActivation::kSigmoid ? "sigmoid" : "tanh")
           << ", pooled_adjacency=" << (options.pooled_adjacency() == PooledAdjacency::kTwoHop ? "two_hop" : "induced")
           << ")";
  }

  /// Nodes kept for a graph of `n` nodes: `k`, or `max(2, floor(ratio n))`.
  int64_t kept_nodes(int64_t n) const { return functional::detail::kept_nodes(options, n); }

  /// The learnable pooling vector `p` (`[C]`).
  torch::Tensor pooling_vector() const { return proj->weight.squeeze(0); }

  TopKPoolOutput forward(const torch::Tensor& output, const torch::Tensor& input, const torch::Tensor& adjacency) {
    constexpr const char* fn = "TopKPool";
    functional::detail::check_topk_pool_inputs(output, input, adjacency, options, fn);
    auto z = detail::to_parameter_dtype(input, proj->weight, fn, "input");
    auto v = detail::to_parameter_dtype(output, proj->weight, fn, "output");
    return functional::detail::topk_pool(v, z, adjacency, proj->weight, proj->bias, options, fn);
  }

  TopKPoolOptions options;
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(TopKPool);

}  // namespace patchgcl

#pragma once

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/options/topk_pool.hpp>

#include <algorithm>
#include <cmath>

namespace patchgcl {

/// What `TopKPool` returns: the kept nodes of both graphs and the graph they span.
struct TopKPoolOutput {
  torch::Tensor indices;    ///< `[B, K]` int64: kept nodes, by descending score.
  torch::Tensor scores;     ///< `[B, K]`: `sigma(S)` of the kept nodes (Eq. 5-6).
  torch::Tensor output;     ///< `[B, K, C]`: `V_{p,in} = sigma(S) V` (Eq. 6), output graph.
  torch::Tensor input;      ///< `[B, K, C]`: `Z_{p,in} = sigma(S) Z` (Eq. 5), input graph.
  torch::Tensor adjacency;  ///< `[B, K, K]` 0/1: `A_p`, before self loops and normalisation.
  torch::Tensor node_scores;  ///< `[B, N]`: `sigma(S)` of every node of the input graph (Eq. 5, Fig. 9(b)).
};

namespace detail {

/// Nodes TopKPool keeps of a graph of `n` nodes: `k`, or `max(2, floor(ratio n))`.
inline int64_t topk_kept_nodes(const TopKPoolOptions& options, int64_t n) {
  if (options.k()) return *options.k();
  // The epsilon keeps e.g. ratio 1/3 of 255 nodes at 85 rather than 84.99.. -> 84.
  return std::max<int64_t>(2, static_cast<int64_t>(std::floor(options.ratio() * static_cast<double>(n) + 1e-9)));
}

/// `A_p` of the kept nodes `indices` (`[B, K]`) of the graphs `a` (`[B, N, N]`), 0/1 in `dtype`,
/// without gradient. Only the kept rows and columns of A are read: no [N, N] mask, and the
/// two-hop structure of the kept nodes is (A A)[idx][:, idx] = A[idx, :] A[:, idx], 2 K^2 N
/// FLOPs instead of the 2 N^3 of A A (the 0/1 sums are exact integers, so `ne(0)` agrees).
inline torch::Tensor topk_pooled_adjacency(const torch::Tensor& a, const torch::Tensor& indices, PooledAdjacency mode,
                                           torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const int64_t n = a.size(1), k = indices.size(1);
  auto a_const = a.detach();
  auto rows = a_const.gather(1, indices.unsqueeze(-1).expand({-1, -1, n}));  // [B, K, N]: A[idx, :]
  if (mode == PooledAdjacency::kTwoHop) {
    auto cols = a_const.gather(2, indices.unsqueeze(1).expand({-1, n, -1}));  // [B, N, K]: A[:, idx]
    return torch::matmul(rows.ne(0).to(dtype), cols.ne(0).to(dtype)).ne(0).to(dtype);
  }
  return rows.gather(2, indices.unsqueeze(1).expand({-1, k, -1})).ne(0).to(dtype);  // [B, K, K]
}

/// TopKPool (Eq. 5-8) on checked arguments: `proj` holds the pooling vector `p` (and the bias).
inline TopKPoolOutput topk_pool_forward(torch::nn::LinearImpl& proj, const TopKPoolOptions& options,
                                        const torch::Tensor& output, const torch::Tensor& input,
                                        const torch::Tensor& adjacency) {
  constexpr const char* fn = "TopKPool";
  const bool batched = input.dim() == 3;
  auto z = to_parameter_dtype(batched ? input : input.unsqueeze(0), proj.weight, fn, "input");
  auto v = to_parameter_dtype(batched ? output : output.unsqueeze(0), proj.weight, fn, "output");
  auto a = batched ? adjacency : adjacency.unsqueeze(0);
  const int64_t n = z.size(1), c = z.size(2);
  const int64_t k = topk_kept_nodes(options, n);
  TORCH_CHECK(k <= n, fn, ": cannot keep k = ", k, " nodes of a graph with N = ", n, " nodes");

  auto s = proj.forward(z).squeeze(-1);  // [B, N]: S = p^T z (+ b)
  if (options.divide_by_norm()) s = s / proj.weight.norm().clamp_min(1e-12);  // p = 0: scores 0, not NaN
  auto score = options.activation() == ScoreActivation::kSigmoid ? torch::sigmoid(s) : torch::tanh(s);
  auto top = score.topk(k, -1);
  auto values = std::get<0>(top), indices = std::get<1>(top);  // [B, K]
  auto gather_rows = [&](const torch::Tensor& x) {
    return x.gather(1, indices.unsqueeze(-1).expand({-1, -1, c})) * values.unsqueeze(-1);
  };

  auto pooled_adjacency = topk_pooled_adjacency(a, indices, options.pooled_adjacency(), z.scalar_type());
  TopKPoolOutput out{indices, values, gather_rows(v), gather_rows(z), pooled_adjacency, score};
  if (!batched) {
    out.indices = out.indices.squeeze(0);
    out.scores = out.scores.squeeze(0);
    out.output = out.output.squeeze(0);
    out.input = out.input.squeeze(0);
    out.adjacency = out.adjacency.squeeze(0);
    out.node_scores = out.node_scores.squeeze(0);
  }
  return out;
}

}  // namespace detail

/// Top-K graph pooling (Gao & Ji 2019), Eq. 5-8: a learnable vector `p` scores every node of
/// the *input* graph, `S = p^T Z (+ b)`; the `K` best nodes are kept in both graphs, weighted
/// by `sigma(S)` of the input graph, and the pooled graphs share `A_p`.
///
/// `output` (`V`, the output graph) and `input` (`Z`, the input graph, which is scored) are
/// `[B, N, C]` or `[N, C]`; `adjacency` is the unnormalised `A` (`[B, N, N]` or `[N, N]`).
/// Gradients reach `p` through the scores. Unbatched inputs give unbatched outputs.
///
///   TopKPool pool(TopKPoolOptions(256).k(64));
///   auto pooled = pool(V, Z, A);  // pooled.output, pooled.input, pooled.adjacency
class TopKPoolImpl : public torch::nn::Cloneable<TopKPoolImpl> {
 public:
  explicit TopKPoolImpl(int64_t in_channels) : TopKPoolImpl(TopKPoolOptions(in_channels)) {}
  explicit TopKPoolImpl(const TopKPoolOptions& options_) : options(options_) { reset(); }

  void reset() override {
    TORCH_CHECK(options.in_channels() >= 1, "TopKPool: `in_channels` must be >= 1, got ", options.in_channels());
    TORCH_CHECK(options.k().has_value() || (options.ratio() > 0.0 && options.ratio() <= 1.0),
                "TopKPool: `ratio` must be in (0, 1], got ", options.ratio());
    TORCH_CHECK(!options.k().has_value() || *options.k() >= 2, "TopKPool: `k` must be >= 2, got ",
                options.k().value_or(0));
    detail::check_non_negative(options.init_std(), "TopKPool", "init_std");
    proj = register_module(
        "proj", torch::nn::Linear(torch::nn::LinearOptions(options.in_channels(), 1).bias(options.bias())));
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
  int64_t kept_nodes(int64_t n) const { return detail::topk_kept_nodes(options, n); }

  /// The learnable pooling vector `p` (`[C]`).
  torch::Tensor pooling_vector() const { return proj->weight.squeeze(0); }

  TopKPoolOutput forward(const torch::Tensor& output, const torch::Tensor& input, const torch::Tensor& adjacency) {
    constexpr const char* fn = "TopKPool";
    detail::check_nodes(input, fn, "input");
    detail::check_same_shape(output, input, fn, "output", "input");
    detail::check_same_device(output, input, fn, "output", "input");
    TORCH_CHECK(input.size(-1) == options.in_channels(), fn, ": `input` must have ", options.in_channels(),
                " channels (last dimension), got shape ", detail::shape_str(input));
    detail::check_adjacency(adjacency, fn, "adjacency");
    detail::check_adjacency_dtype(adjacency, fn, "adjacency");
    detail::check_adjacency_matches(adjacency, input, fn, "adjacency", "input");
    detail::check_finite(input, options.check_finite(), fn, "input");
    detail::check_finite(output, options.check_finite(), fn, "output");
    return detail::topk_pool_forward(*proj, options, output, input, adjacency);
  }

  TopKPoolOptions options;
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(TopKPool);

}  // namespace patchgcl

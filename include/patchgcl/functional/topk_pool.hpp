#pragma once

// Top-K graph pooling (Eq. 5-8) as functions: the scores of the input graph's nodes, the K best
// kept in both graphs weighted by their scores, and the adjacency the kept nodes span. The module
// (modules/topk_pool.hpp) holds the pooling vector and calls these; the fused graph loss
// (modules/detail/fused_graph_nce*.hpp) calls the pieces on its batched layout.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/options/topk_pool.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

namespace patchgcl {

/// What `TopKPool` and `functional::topk_pool` return: the kept nodes of both graphs and the
/// graph they span.
struct TopKPoolOutput {
  torch::Tensor indices;      ///< `[B, K]` int64: kept nodes, by descending score.
  torch::Tensor scores;       ///< `[B, K]`: `sigma(S)` of the kept nodes (Eq. 5-6).
  torch::Tensor output;       ///< `[B, K, C]`: `V_{p,in} = sigma(S) V` (Eq. 6), output graph.
  torch::Tensor input;        ///< `[B, K, C]`: `Z_{p,in} = sigma(S) Z` (Eq. 5), input graph.
  torch::Tensor adjacency;    ///< `[B, K, K]` 0/1: `A_p`, before self loops and normalisation.
  torch::Tensor node_scores;  ///< `[B, N]`: `sigma(S)` of every node of the input graph (Eq. 5, Fig. 9(b)).
};

namespace functional {
namespace detail {

/// Nodes kept of a graph of `n` nodes: `options.k()`, or `max(2, floor(ratio n))`.
inline int64_t kept_nodes(const TopKPoolOptions& options, int64_t n) {
  if (options.k()) return *options.k();
  // The epsilon keeps e.g. ratio 1/3 of 255 nodes at 85 rather than 84.99.. -> 84.
  return std::max<int64_t>(2, static_cast<int64_t>(std::floor(options.ratio() * static_cast<double>(n) + 1e-9)));
}

/// `k` kept nodes fit in a graph of `n` nodes.
inline void check_kept_nodes(int64_t k, int64_t n, const char* fn) {
  TORCH_CHECK(k <= n, fn, ": cannot keep k = ", k, " nodes of a graph with N = ", n, " nodes");
}

/// The options pooling reads: `ratio` in (0, 1] unless `k` is set, `k >= 2` when set.
inline void check_topk_pool_options(const TopKPoolOptions& options, const char* fn) {
  TORCH_CHECK(options.k().has_value() || (options.ratio() > 0.0 && options.ratio() <= 1.0), fn,
              ": `ratio` must be in (0, 1], got ", options.ratio());
  TORCH_CHECK(!options.k().has_value() || *options.k() >= 2, fn, ": `k` must be >= 2, got ", options.k().value_or(0));
}

/// The graphs to pool: `output` (`V`) and `input` (`Z`) `[B, N, C]` or `[N, C]` of one shape and
/// device with `C = options.in_channels()`, `adjacency` `A` of the same graphs; finite when
/// `options.check_finite()` says so.
inline void check_topk_pool_inputs(const torch::Tensor& output, const torch::Tensor& input,
                                   const torch::Tensor& adjacency, const TopKPoolOptions& options, const char* fn) {
  namespace checks = patchgcl::detail;
  checks::check_nodes(input, fn, "input");
  checks::check_same_shape(output, input, fn, "output", "input");
  checks::check_same_device(output, input, fn, "output", "input");
  TORCH_CHECK(input.size(-1) == options.in_channels(), fn, ": `input` must have ", options.in_channels(),
              " channels (last dimension), got shape ", checks::shape_str(input));
  checks::check_adjacency(adjacency, fn, "adjacency");
  checks::check_adjacency_dtype(adjacency, fn, "adjacency");
  checks::check_adjacency_matches(adjacency, input, fn, "adjacency", "input");
  checks::check_finite(input, options.check_finite(), fn, "input");
  checks::check_finite(output, options.check_finite(), fn, "output");
}

/// Eq. 5-6: the score nonlinearity `sigma(S)` (or `tanh(S)`, PyG).
inline torch::Tensor activate_scores(const torch::Tensor& s, ScoreActivation activation) {
  return activation == ScoreActivation::kSigmoid ? torch::sigmoid(s) : torch::tanh(s);
}

/// `d sigma(S) / dS` from the activated scores `values`: `sigma (1 - sigma)`, or `1 - tanh^2`.
inline torch::Tensor activate_scores_derivative(const torch::Tensor& values, ScoreActivation activation) {
  return activation == ScoreActivation::kTanh ? 1 - values * values : values * (1 - values);
}

/// Eq. 5: `sigma(S)` of every node of `input` (`[B, N, C]`), `S = p^T z (+ b)` with the pooling
/// vector `p` as `weight` (`[1, C]`) and `bias` (`[1]` or undefined), divided by `||p||` when
/// `options.divide_by_norm()` (PyG): `[B, N]`.
inline torch::Tensor topk_scores(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                                 const TopKPoolOptions& options) {
  auto s = torch::nn::functional::linear(input, weight, bias).squeeze(-1);
  if (options.divide_by_norm()) s = s / weight.norm().clamp_min(1e-12);  // p = 0: scores 0, not NaN
  return activate_scores(s, options.activation());
}

/// The kept nodes `x[idx]` (`[.., K, C]`) of the nodes `x` (`[.., N, C]`) at `indices` (`[.., K]`,
/// broadcast over the leading dimensions of `x`).
inline torch::Tensor gather_nodes(const torch::Tensor& x, const torch::Tensor& indices) {
  auto sizes = x.sizes().vec();
  sizes[sizes.size() - 2] = indices.size(-1);
  return x.gather(-2, indices.unsqueeze(-1).expand(sizes));
}

/// Eq. 5-6: the kept nodes weighted by their scores, `sigma(S)_idx x[idx]`, from the gathered
/// nodes (`[.., K, C]`) and the kept scores (`[.., K]`).
inline torch::Tensor weight_kept(const torch::Tensor& gathered, const torch::Tensor& values) {
  return gathered * values.unsqueeze(-1);
}

/// `A_p` of the kept nodes `indices` (`[B, K]`) of the graphs `a` (`[B, N, N]`), 0/1 in `dtype`,
/// without gradient. Only the kept rows and columns of A are read: no [N, N] mask, and the
/// two-hop structure of the kept nodes is (A A)[idx][:, idx] = A[idx, :] A[:, idx], 2 K^2 N
/// multiply-adds instead of N^3.
inline torch::Tensor pooled_adjacency(const torch::Tensor& a, const torch::Tensor& indices, PooledAdjacency mode,
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

/// TopKPool (Eq. 5-8) on checked arguments of one dtype; `fn` names the caller in the one check
/// that needs the graph size (`k <= N`).
inline TopKPoolOutput topk_pool(const torch::Tensor& output, const torch::Tensor& input, const torch::Tensor& adjacency,
                                const torch::Tensor& weight, const torch::Tensor& bias, const TopKPoolOptions& options,
                                const char* fn) {
  const bool batched = input.dim() == 3;
  auto z = batched ? input : input.unsqueeze(0);
  auto v = batched ? output : output.unsqueeze(0);
  auto a = batched ? adjacency : adjacency.unsqueeze(0);
  const int64_t k = kept_nodes(options, z.size(1));
  check_kept_nodes(k, z.size(1), fn);

  auto score = topk_scores(z, weight, bias, options);
  auto top = score.topk(k, -1);
  auto values = std::get<0>(top), indices = std::get<1>(top);  // [B, K]
  auto pooled = pooled_adjacency(a, indices, options.pooled_adjacency(), z.scalar_type());
  TopKPoolOutput out{
      indices, values, weight_kept(gather_nodes(v, indices), values), weight_kept(gather_nodes(z, indices), values),
      pooled,  score};
  if (!batched) {
    for (auto* t : {&out.indices, &out.scores, &out.output, &out.input, &out.adjacency, &out.node_scores})
      *t = t->squeeze(0);
  }
  return out;
}

}  // namespace detail

/// Top-K graph pooling (Gao & Ji 2019), Eq. 5-8, as a function: the pooling vector `p` scores
/// every node of the *input* graph, `S = p^T Z (+ b)`; the `K` best nodes are kept in both graphs,
/// weighted by `sigma(S)` of the input graph, and the pooled graphs share `A_p`.
///
/// `output` (`V`) and `input` (`Z`, which is scored) are `[B, N, C]` or `[N, C]`, `adjacency`
/// the unnormalised `A` (`[B, N, N]` or `[N, N]`). `weight` is `p` as `[1, C]` (`TopKPool`'s
/// `proj->weight`), `bias` `[1]` or undefined, of the nodes' dtype and device. Of `options`,
/// pooling reads `in_channels` (`C`), `ratio`/`k`, `activation`, `divide_by_norm`,
/// `pooled_adjacency` and `check_finite`; the bias is the `bias` tensor. Unbatched inputs give
/// unbatched outputs.
///
///   auto pooled = functional::topk_pool(V, Z, A, pool->proj->weight, pool->proj->bias, pool->options);
inline TopKPoolOutput topk_pool(const torch::Tensor& output, const torch::Tensor& input, const torch::Tensor& adjacency,
                                const torch::Tensor& weight, const torch::Tensor& bias,
                                const TopKPoolOptions& options) {
  constexpr const char* fn = "topk_pool";
  detail::check_topk_pool_options(options, fn);
  detail::check_topk_pool_inputs(output, input, adjacency, options, fn);
  patchgcl::detail::check_same_dtype(input, output, fn, "input", "output");
  TORCH_CHECK(weight.defined() && weight.dim() == 2 && weight.size(0) == 1 && weight.size(1) == input.size(-1), fn,
              ": `weight` must be [1, C] = [1, ", input.size(-1), "], got ",
              weight.defined() ? patchgcl::detail::shape_str(weight) : std::string("undefined"));
  patchgcl::detail::check_same_dtype(input, weight, fn, "input", "weight");
  patchgcl::detail::check_same_device(input, weight, fn, "input", "weight");
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == 1), fn, ": `bias` must be [1] or undefined, got ",
              bias.defined() ? patchgcl::detail::shape_str(bias) : std::string());
  if (bias.defined()) patchgcl::detail::check_same_dtype(input, bias, fn, "input", "bias");
  return detail::topk_pool(output, input, adjacency, weight, bias, options, fn);
}

}  // namespace functional
}  // namespace patchgcl

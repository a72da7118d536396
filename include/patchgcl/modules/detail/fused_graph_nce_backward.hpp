#pragma once

// The written-out backward of GraphNCELoss's fused node (fused_graph_nce.hpp), one function per
// step of its forward (fused_graph_nce_forward.hpp), from the top level down:
//  - InfoNCE: `dS = softmax_rows(S) + softmax_cols(S) - directions I`, `dV = dS Z w / tau`;
//  - unit rows: `dT = (dV - V (V . dV) c) inv` (functional::detail::L2Normalize);
//  - TAGConv: `dW = dT^T H`, `db = sum dT`, `dH = dT W`, `dX = dH_0 + Abar^T (dH_1 + ...)`;
//  - pooling (level p >= 1): `X_p = sigma(S) V[idx]`: `dV[idx] += sigma dX_p`,
//    `dS = (dX_p . V[idx]) sigma'`, `dp = dS^T Z[idx]`, `db_p = sum dS`;
//  - embedding: unit rows, `dW_e = dE^T X`, `dX = dE W_e`, added into a zero map at the ids.

#include <patchgcl/functional/tag_conv.hpp>
#include <patchgcl/functional/topk_pool.hpp>
#include <patchgcl/modules/detail/fused_graph_nce_config.hpp>
#include <patchgcl/modules/detail/fused_ops.hpp>

#include <utility>
#include <vector>

namespace patchgcl {
namespace detail {

/// The parameters the backward multiplies with, per layer: the embedding's weight, the gnn's,
/// then each pooled gnn's (`FusedGraphNCEGradients::weight` reads them back).
inline std::vector<torch::Tensor> fused_backward_weights(const FusedGraphNCESettings& o, torch::TensorList params) {
  std::vector<torch::Tensor> weights;
  for (int64_t l = 0; l < o.layers; ++l) {
    weights.push_back(params[o.embed_weight(l)]);
    for (int64_t p = 0; p <= o.levels(); ++p) weights.push_back(params[o.conv_weight(l, p)]);
  }
  return weights;
}

/// The backward's state: the settings, the saved tensors, which tensor inputs need a gradient
/// (the L maps of G(x), then the parameters), and the gradients of all the node's inputs (the L
/// maps, x's maps, the ids, the parameters, the configuration: the non-tensor ones get none).
struct FusedGraphNCEGradients {
  FusedGraphNCEGradients(const FusedGraphNCESettings& settings, const FusedGraphNCESaved& saved_tensors,
                         std::vector<bool> needs_grad)
      : o(settings),
        saved(saved_tensors),
        needs(std::move(needs_grad)),
        inputs(static_cast<size_t>(o.layers + o.layers * o.params_per_layer() + 3)) {}

  const FusedGraphNCESettings& o;
  const FusedGraphNCESaved& saved;
  std::vector<bool> needs;
  torch::autograd::variable_list inputs;

  torch::Tensor& param(int64_t i) { return inputs[o.layers + 2 + i]; }
  bool param_needs_grad(int64_t i) const { return needs[o.layers + i]; }
  /// Layer `l`'s embedding weight (`p` = -1) or TAGConv weight of level `p`.
  const torch::Tensor& weight(int64_t l, int64_t p) const { return saved.weights[l * (2 + o.levels()) + 1 + p]; }
};

/// Eq. 4 / 9 at level `p`: `dV` of the level's output nodes (`[G, n, D]`) for the upstream `g`;
/// each anchor's loss weighs `w_p / ((P + 1) L B n_p)` (without `P + 1` unless `average_levels`).
inline torch::Tensor info_nce_backward(const FusedGraphNCEGradients& b, int64_t p, const torch::Tensor& g) {
  const auto& o = b.o;
  const int64_t per_level = 1 + 2 * (o.rows + o.cols);
  const double anchors = (o.average_levels ? static_cast<double>(o.levels() + 1) : 1.0) *
                         static_cast<double>(o.layers * o.batch) * static_cast<double>(o.nodes[p]);
  return batched_info_nce_backward(&b.saved.nce[p * per_level], o.rows, o.cols,
                                   g * (o.level_weights[p] / (anchors * o.tau)));
}

/// `dW = dT^T H` and `db = sum dT` of level `p`'s TAGConv weights, when some layer's needs one.
inline void conv_weight_backward(FusedGraphNCEGradients& b, int64_t p, const torch::Tensor& dt) {
  const auto& o = b.o;
  bool needed = false;
  for (int64_t l = 0; l < o.layers; ++l) needed = needed || b.param_needs_grad(o.conv_weight(l, p));
  if (!needed) return;
  auto dw = torch::bmm(dt.transpose(1, 2), b.saved.hops[p]);  // [L, D, (K+1) D]
  auto db = o.conv_bias ? dt.sum(1) : torch::Tensor();
  for (int64_t l = 0; l < o.layers; ++l) {
    const int64_t w = o.conv_weight(l, p);
    b.param(w) = dw.select(0, l);
    if (o.conv_bias) b.param(w + 1) = db.select(0, l);
  }
}

/// Unit rows and TAGConv at level `p` (Eq. 2-3 / 7-8), from `dv`, the gradient of the level's
/// output nodes: the weights' gradients, and `dX` of the level's input nodes, `[L B, n, D]`.
inline torch::Tensor tag_conv_backward(FusedGraphNCEGradients& b, int64_t p, const torch::Tensor& dv) {
  const auto& o = b.o;
  const auto& unit = b.saved.unit;
  const int64_t L = o.layers, B = o.batch, n = o.nodes[p], K = o.conv_hops(p), D = dv.size(-1);
  auto dt =
      unit_rows_backward(unit[3 * p], unit[3 * p + 1], unit[3 * p + 2], dv.view({L, B, n, D})).view({L, B * n, D});
  conv_weight_backward(b, p, dt);
  auto dh = torch::empty({L, B * n, (K + 1) * D}, dt.options());
  for (int64_t l = 0; l < L; ++l) functional::detail::matmul_into(dh.select(0, l), dt.select(0, l), b.weight(l, p));
  return functional::detail::stack_hops_backward(b.saved.abar[p].transpose(1, 2), dh.view({L * B, n, (K + 1) * D}), K,
                                                 D);
}

/// The gradient pooling level p sends to the output nodes of level p - 1: `rows` to add at `index`.
struct PooledGradient {
  torch::Tensor rows, index;
};

/// Pooling at level `p` >= 1 (Eq. 5-6), from `dx` (`[L B, n_p, D]`): `X_p = sigma(S) V[idx]` on
/// the output graph, the scores the input graph's. The pooling vectors' gradients, and
/// `dV[idx] += sigma dX_p` for the level below.
inline PooledGradient pool_backward(FusedGraphNCEGradients& b, int64_t p, const torch::Tensor& dx) {
  const auto& o = b.o;
  const int64_t L = o.layers, B = o.batch, LB = L * B, n = o.nodes[p], D = dx.size(-1);
  const auto &kept = b.saved.pooled[3 * (p - 1)], &values = b.saved.pooled[3 * (p - 1) + 1];
  const auto& gathered = b.saved.pooled[3 * (p - 1) + 2];
  auto dscore = (dx * gathered.select(2, 0).view({LB, n, D})).sum(-1);  // [L B, n]
  dscore.mul_(functional::detail::activate_scores_derivative(values, o.score_activation));
  auto dproj = torch::bmm(dscore.view({L, 1, B * n}), gathered.select(2, 1).reshape({L, B * n, D}));  // [L, 1, D]
  auto dproj_bias = o.score_bias ? dscore.view({L, B * n}).sum(1) : torch::Tensor();
  for (int64_t l = 0; l < L; ++l) {
    b.param(o.pool_weight(l, p)) = dproj.select(0, l);
    if (o.score_bias) b.param(o.pool_weight(l, p) + 1) = dproj_bias.narrow(0, l, 1);
  }
  return {dx * values.unsqueeze(-1), kept.unsqueeze(-1).expand({LB, n, D})};
}

/// Step 1, the embedding heads, from `dx` (`[L B, N, D]`): unit rows, the heads' gradients, and
/// the gradient of every map of G(x) that needs one (zeros but at the sampled locations).
inline void embed_backward(FusedGraphNCEGradients& b, const torch::Tensor& dx) {
  const auto& o = b.o;
  const auto& embed = b.saved.embed;
  const int64_t L = o.layers, B = o.batch, N = o.nodes[0], D = dx.size(-1);
  auto de = unit_rows_backward(embed[0], embed[1], embed[2], dx.view({L, B, N, D})).view({L, B * N, D});
  auto db = de.sum(1);
  for (int64_t l = 0; l < L; ++l) {
    auto de_l = de.select(0, l);
    b.param(o.embed_weight(l)) = torch::mm(de_l.t(), b.saved.sampled[l]);
    b.param(o.embed_weight(l) + 1) = db.select(0, l);
    if (b.needs[l]) b.inputs[l] = scatter_patches(o.map_size(l), torch::mm(de_l, b.weight(l, -1)), b.saved.ids[l]);
  }
}

/// The gradients of the fused node's inputs for the upstream gradient `g` of the loss.
inline torch::autograd::variable_list fused_graph_nce_backward(const FusedGraphNCESettings& o,
                                                               const FusedGraphNCESaved& saved, std::vector<bool> needs,
                                                               const torch::Tensor& g) {
  FusedGraphNCEGradients b(o, saved, std::move(needs));
  PooledGradient from_above;
  torch::Tensor dx;
  for (int64_t p = o.levels(); p >= 0; --p) {
    auto dv = info_nce_backward(b, p, g);
    if (from_above.rows.defined())
      dv.view({o.layers * o.batch, o.nodes[p], dv.size(-1)}).scatter_add_(1, from_above.index, from_above.rows);
    dx = tag_conv_backward(b, p, dv);
    if (p > 0) from_above = pool_backward(b, p, dx);
  }
  embed_backward(b, dx);
  return std::move(b.inputs);
}

}  // namespace detail
}  // namespace patchgcl

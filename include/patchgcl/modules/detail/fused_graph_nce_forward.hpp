#pragma once

// The forward of GraphNCELoss's fused node (fused_graph_nce.hpp), one function per step of
// Eq. 1-10 for every layer, image and both graphs at once. Node tensors are laid out
// `[L, B, 2, n, D]` (layer, image, graph: 0 the output G(x), 1 the input x, node, feature); only
// the products with a layer's own weights (embedding, TAGConv linear, pooling vector) are taken
// per layer. Each step records what its backward (fused_graph_nce_backward.hpp) reads in `saved`
// when that is given.

#include <patchgcl/functional/adjacency.hpp>
#include <patchgcl/functional/tag_conv.hpp>
#include <patchgcl/functional/topk_pool.hpp>
#include <patchgcl/modules/detail/fused_graph_nce_config.hpp>
#include <patchgcl/modules/detail/fused_ops.hpp>

#include <tuple>
#include <vector>

namespace patchgcl {
namespace detail {

/// One graph of every layer and image of node tensors `x` (`[L, B, 2, n, D]`): the output graphs
/// (`graph` 0) or the input graphs (1) as `[L B, n, D]` (a view), or as `[L, B n, D]` (a layer's
/// graphs as one, for negatives from the whole batch).
inline torch::Tensor graph_side(const torch::Tensor& x, int64_t graph, bool whole_batch) {
  const int64_t L = x.size(0), B = x.size(1), n = x.size(3), D = x.size(4);
  return whole_batch ? x.select(2, graph).reshape({L, B * n, D}) : x.select(2, graph).view({L * B, n, D});
}

/// Step 1, the embedding heads `h_l`: the sampled patches of both images, as the rows of one
/// matrix per layer, through the layer's Linear (one product per layer for both graphs), then
/// unit rows: `[L, B, 2, N, D]`.
inline torch::Tensor fused_embed(const FusedGraphNCEConfig& o, torch::TensorList maps_out,
                                 const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                                 torch::TensorList params, FusedGraphNCESaved* saved) {
  const int64_t L = o.layers, B = o.batch, N = o.nodes[0];
  const auto& first = params[o.embed_weight(0)];
  const int64_t D = first.size(0);
  auto embedded = torch::empty({L, B, 2, N, D}, first.options());
  for (int64_t l = 0; l < L; ++l) {
    const auto& weight = params[o.embed_weight(l)];
    const int64_t C = weight.size(1);
    auto sampled = sample_both(maps_out[l], maps_in[l], ids[l]);  // [C, B, 2, N]
    linear_into(embedded.select(0, l).view({2 * B * N, D}), sampled.view({C, 2 * B * N}).t(), weight,
                params[o.embed_weight(l) + 1]);
    // The backward needs G(x)'s rows only: a copy of them, so that x's half of the buffer is freed.
    if (saved) saved->sampled.push_back(sampled.select(2, 0).reshape({C, B * N}).contiguous().t());
  }
  auto unit = unit_rows(embedded, o.l2_eps, saved != nullptr);
  if (saved) saved->embed = {unit.out.select(2, 0), unit.inv.select(2, 0), unit.c.select(2, 0)};
  return unit.out;
}

/// Eq. 5-6 at pooling level `p` >= 1: `sigma(S)` of the input graphs' nodes (computed for both
/// graphs: one product per layer), the `n_p` best kept in both graphs, weighted by their scores:
/// `[L, B, 2, n_p, D]`. `adjacency` becomes the kept nodes' `A_p`.
inline torch::Tensor fused_pool(const FusedGraphNCEConfig& o, int64_t p, const torch::Tensor& nodes,
                                torch::Tensor& adjacency, torch::TensorList params, FusedGraphNCESaved* saved,
                                FusedGraphNCELevels* levels) {
  const int64_t L = o.layers, B = o.batch, LB = L * B, n = o.nodes[p], prev = o.nodes[p - 1], D = nodes.size(-1);
  auto scores = torch::empty({L, B, 2, prev, 1}, nodes.options());
  for (int64_t l = 0; l < L; ++l) {
    const int64_t w = o.pool_weight(l, p);
    linear_into(scores.select(0, l).view({2 * B * prev, 1}), nodes.select(0, l).view({2 * B * prev, D}), params[w],
                o.score_bias ? params[w + 1] : torch::Tensor());
  }
  auto s = functional::detail::activate_scores(scores.select(2, 1).view({LB, prev}), o.score_activation);
  auto top = s.topk(n, -1);
  auto values = std::get<0>(top), kept = std::get<1>(top);  // [L B, n]
  auto gathered =
      functional::detail::gather_nodes(nodes.view({LB, 2, prev, D}), kept.view({LB, 1, n})).view({L, B, 2, n, D});
  adjacency = functional::detail::pooled_adjacency(adjacency, kept, o.pooled, nodes.scalar_type());
  if (saved) saved->pooled.insert(saved->pooled.end(), {kept, values, gathered});
  if (levels) {
    levels->scores.push_back(s);
    levels->kept.push_back(kept);
  }
  return functional::detail::weight_kept(gathered, values.view({L, B, 1, n}));
}

/// Eq. 2-3 (level 0) / 7-8 (level p), then unit rows: TAGConv of both graphs of every layer and
/// image through the shared `abar` (`[L B, n, n]`; one product per hop for all, one per layer
/// with its weights): `[L, B, 2, n, D]`.
inline torch::Tensor fused_tag_conv(const FusedGraphNCEConfig& o, int64_t p, const torch::Tensor& x,
                                    const torch::Tensor& abar, torch::TensorList params, FusedGraphNCESaved* saved) {
  const int64_t L = o.layers, B = o.batch, LB = L * B, n = o.nodes[p], D = x.size(-1), K = o.conv_hops(p);
  auto both = abar.unsqueeze(1).expand({LB, 2, n, n}).reshape({2 * LB, n, n});
  auto h = functional::detail::stack_hops(both, x.view({2 * LB, n, D}), K).view({L, 2 * B * n, (K + 1) * D});
  auto t = torch::empty({L, B, 2, n, D}, x.options());
  for (int64_t l = 0; l < L; ++l) {
    const int64_t w = o.conv_weight(l, p);
    linear_into(t.select(0, l).view({2 * B * n, D}), h.select(0, l), params[w],
                o.conv_bias ? params[w + 1] : torch::Tensor());
  }
  auto unit = unit_rows(t, o.l2_eps, saved != nullptr);
  if (saved) {
    // The output graph's hop features only (the weight gradient's operand), as a copy.
    saved->hops.push_back(h.view({L, B, 2, n, (K + 1) * D}).select(2, 0).reshape({L, B * n, (K + 1) * D}).contiguous());
    saved->unit.insert(saved->unit.end(), {unit.out.select(2, 0), unit.inv.select(2, 0), unit.c.select(2, 0)});
  }
  return unit.out;
}

/// Eq. 4 (level 0) / 9 (level p): InfoNCE between corresponding nodes of the two graphs of
/// `nodes` (`[L, B, 2, n, D]`), one similarity matrix per graph pair: each layer's mean over its
/// anchors, `[L]`.
inline torch::Tensor fused_info_nce(const FusedGraphNCEConfig& o, const torch::Tensor& nodes,
                                    FusedGraphNCESaved* saved) {
  auto v = graph_side(nodes, 0, o.whole_batch), z = graph_side(nodes, 1, o.whole_batch);
  auto nce = batched_info_nce(v, z, o.layers, o.tau, o.fill, o.rows, o.cols, saved != nullptr);
  if (saved) saved->nce.insert(saved->nce.end(), nce.saved.begin(), nce.saved.end());
  return nce.per_layer;
}

/// The loss (Eq. 1-10) on checked inputs: `maps_out`/`maps_in` one `[B, C_l, H_l, W_l]` map per
/// layer, `ids` one `[N]` int64 tensor per layer, `params` as FusedGraphNCESettings lays them
/// out. `saved` (for the backward) and `levels` (for inspect) are filled when given.
inline torch::Tensor fused_graph_nce(const FusedGraphNCEConfig& o, torch::TensorList maps_out,
                                     const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                                     torch::TensorList params, FusedGraphNCESaved* saved, FusedGraphNCELevels* levels) {
  auto nodes = fused_embed(o, maps_out, maps_in, ids, params, saved);
  // Eq. 1 on the input graphs' embedded nodes.
  auto adjacency = functional::detail::cosine_adjacency(graph_side(nodes, 1, false), o.adjacency);
  torch::Tensor layer_losses;
  for (int64_t p = 0; p <= o.levels(); ++p) {
    auto x = p == 0 ? nodes : fused_pool(o, p, nodes, adjacency, params, saved, levels);
    auto abar = functional::detail::normalize_adjacency(adjacency, o.normalize);
    nodes = fused_tag_conv(o, p, x, abar, params, saved);
    auto level_nce = fused_info_nce(o, nodes, saved);
    auto weighted = level_nce * o.level_weights[p];  // Eq. 10's sum over levels
    layer_losses = layer_losses.defined() ? layer_losses.add_(weighted) : weighted;
    if (saved) saved->abar.push_back(abar);
    if (levels) {
      levels->adjacency.push_back(adjacency);
      levels->abar.push_back(abar);
      levels->info_nce.push_back(level_nce);
    }
  }
  if (o.average_levels) layer_losses.div_(static_cast<double>(o.levels() + 1));
  if (levels) levels->layer_losses = layer_losses;
  return layer_losses.mean();
}

}  // namespace detail
}  // namespace patchgcl

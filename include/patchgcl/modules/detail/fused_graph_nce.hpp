#pragma once

// GraphNCELoss (Eq. 1-10) over all layers at once, as one autograd node with a written-out
// backward. After the embedding heads every layer's graphs have `nc` features and `N` nodes, so
// the adjacency (Eq. 1), its normalisation, the hop products (Eq. 2-3, 7-8), the L2
// normalisations, InfoNCE (Eq. 4, 9) and top-K pooling (Eq. 5-6) of every layer, image and of
// both graphs (output G(x), input x) run as one batched computation; only the products with a
// layer's own weights (embedding, TAGConv linear, pooling vector) are taken per layer. The
// autograd graph of the whole loss is one node: at the paper setting a forward + backward
// dispatches 550 ops instead of 1,163 (docs/benchmarks.md, "Ops per call"; a GPU launches each).
// Used by modules/graph_nce.hpp only.

#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/adjacency.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/functional/tag_conv.hpp>
#include <patchgcl/modules/detail/fused_ops.hpp>
#include <patchgcl/modules/topk_pool.hpp>
#include <patchgcl/options/graph_nce.hpp>

#include <cmath>
#include <vector>

namespace patchgcl {
namespace detail {

/// What the fused computation needs of the options and of the inputs' shapes.
struct FusedGraphNCEConfig {
  int64_t layers = 0, batch = 0;  ///< L feature layers, B images
  std::vector<int64_t> nodes;     ///< nodes per graph at each level: n_0 = N, n_1, ..., n_P
  int64_t hops = 0, pooled_hops = 0;
  std::vector<double> level_weights;
  bool average_levels = true;
  double tau = 1.0, fill = 0.0;  ///< InfoNCE's temperature and `diagonal_value / tau`
  bool rows = true, cols = true, whole_batch = false;
  bool conv_bias = true, score_bias = true, tanh = false;
  double l2_eps = 1e-12;
  CosineAdjacencyOptions adjacency;
  NormalizeAdjacencyOptions normalize;
  PooledAdjacency pooled = PooledAdjacency::kTwoHop;

  int64_t levels() const { return static_cast<int64_t>(nodes.size()) - 1; }
  /// Parameters per layer in the flat list: embed (weight, bias), gnn (weight[, bias]), then per
  /// pooling level the pool's proj (weight[, bias]) and the pooled gnn (weight[, bias]).
  int64_t params_per_layer() const { return 3 + conv_bias + levels() * (2 + score_bias + conv_bias); }
  int64_t embed_weight(int64_t l) const { return l * params_per_layer(); }
  int64_t gnn_weight(int64_t l) const { return embed_weight(l) + 2; }
  int64_t pool_weight(int64_t l, int64_t p) const {  // p = 1..P
    return gnn_weight(l) + 1 + conv_bias + (p - 1) * (2 + score_bias + conv_bias);
  }
  int64_t pooled_gnn_weight(int64_t l, int64_t p) const { return pool_weight(l, p) + 1 + score_bias; }
};

/// What the backward reads, filled by the forward. Node tensors are laid out
/// `[L, B, 2, n, nc]` (layer, image, graph: 0 the output G(x), 1 the input x, node, feature).
struct FusedGraphNCESaved {
  std::vector<torch::Tensor> sampled;  ///< per layer: `[B N, C_l]` sampled features of G(x)
  std::vector<torch::Tensor> embed;    ///< out, inv, c of the embedding's unit rows (output graph)
  std::vector<torch::Tensor> hops;     ///< per level: `[L, B n, (K+1) nc]` hop features of the output graph
  std::vector<torch::Tensor> abar;     ///< per level: `[L B, n, n]`
  std::vector<torch::Tensor> unit;     ///< per level: out, inv, c of the TAGConv output's unit rows (output graph)
  std::vector<torch::Tensor> nce;      ///< per level: input nodes, then e and sum of the rows and/or columns
  std::vector<torch::Tensor> pooled;   ///< per level >= 1: indices, values, gathered rows `[L, B, 2, k, nc]`
};

/// Per-level tensors of every layer and image for GraphNCELoss::inspect (`[L B, ...]`).
struct FusedGraphNCELevels {
  std::vector<torch::Tensor> adjacency, abar, scores, kept, info_nce;  ///< info_nce: `[L]`
  torch::Tensor layer_losses;                                           ///< `[L]`
};

/// The loss on checked inputs: `maps_out`/`maps_in` one `[B, C_l, H_l, W_l]` map per layer,
/// `ids` one `[N]` int64 tensor per layer, `params` as FusedGraphNCEConfig lays them out.
/// `saved` (for the backward) and `levels` (for inspect) are filled when given.
inline torch::Tensor fused_graph_nce(const FusedGraphNCEConfig& o, torch::TensorList maps_out,
                                     const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                                     torch::TensorList params, FusedGraphNCESaved* saved,
                                     FusedGraphNCELevels* levels) {
  const int64_t L = o.layers, B = o.batch, N = o.nodes[0], P = o.levels(), LB = L * B;
  const int64_t D = params[o.embed_weight(0)].size(0);
  const bool keep = saved != nullptr;
  const auto options = params[o.embed_weight(0)].options();
  // The graphs of one side, `[L B, n, D]` (a view), or `[L, B n, D]` for negatives from the whole batch.
  const auto side = [&](const torch::Tensor& x, int64_t s, int64_t n, bool whole_batch) {
    return whole_batch ? x.select(2, s).reshape({L, B * n, D}) : x.select(2, s).view({LB, n, D});
  };

  // Step 1: the sampled patches of both images, as the rows of one matrix per layer, through the
  // layer's embedding head (Linear): one product per layer for both graphs.
  auto embedded = torch::empty({L, B, 2, N, D}, options);
  for (int64_t l = 0; l < L; ++l) {
    const auto& weight = params[o.embed_weight(l)];
    const int64_t C = weight.size(1);
    auto sampled = sample_both(maps_out[l], maps_in[l], ids[l]);  // [C, B, 2, N]
    linear_into(embedded.select(0, l).view({2 * B * N, D}), sampled.view({C, 2 * B * N}).t(), weight,
                params[o.embed_weight(l) + 1]);
    // The backward needs G(x)'s rows only: a copy of them, so that x's half of the buffer is freed.
    if (keep) saved->sampled.push_back(sampled.select(2, 0).reshape({C, B * N}).contiguous().t());
  }
  auto unit = unit_rows(embedded, o.l2_eps, keep);
  if (keep) saved->embed = {unit.out.select(2, 0), unit.inv.select(2, 0), unit.c.select(2, 0)};
  auto nodes = unit.out;  // [L, B, 2, n, D]

  torch::Tensor adjacency, layer_losses;
  for (int64_t p = 0; p <= P; ++p) {
    const int64_t n = o.nodes[p], prev = p == 0 ? n : o.nodes[p - 1];
    torch::Tensor x;  // [L, B, 2, n, D]: the level's node features of both graphs
    if (p == 0) {
      x = nodes;
      adjacency = functional::detail::cosine_adjacency(side(nodes, 1, n, false), o.adjacency);  // Eq. 1
    } else {
      // Eq. 5-6: scores of the input graph's nodes (computed for both graphs: one product per
      // layer), the top n kept in both graphs, weighted by their scores.
      auto scores = torch::empty({L, B, 2, prev, 1}, options);
      for (int64_t l = 0; l < L; ++l) {
        const int64_t w = o.pool_weight(l, p);
        linear_into(scores.select(0, l).view({2 * B * prev, 1}), nodes.select(0, l).view({2 * B * prev, D}), params[w],
                    o.score_bias ? params[w + 1] : torch::Tensor());
      }
      auto s = scores.select(2, 1).view({LB, prev});
      if (o.tanh) s.tanh_();
      else s.sigmoid_();
      auto top = s.topk(n, -1);
      auto values = std::get<0>(top), kept = std::get<1>(top);  // [L B, n]
      auto index = kept.view({LB, 1, n, 1}).expand({LB, 2, n, D}).reshape({2 * LB, n, D});
      auto gathered = nodes.view({2 * LB, prev, D}).gather(1, index).view({L, B, 2, n, D});
      x = gathered * values.view({L, B, 1, n, 1});
      adjacency = topk_pooled_adjacency(adjacency, kept, o.pooled, nodes.scalar_type());
      if (keep) saved->pooled.insert(saved->pooled.end(), {kept, values, gathered});
      if (levels) {
        levels->scores.push_back(s);
        levels->kept.push_back(kept);
      }
    }
    auto abar = functional::detail::normalize_adjacency(adjacency, o.normalize);

    // Eq. 2-3 / 7-8: TAGConv of both graphs through the shared Abar (one product per hop for
    // every layer, image and graph; one product per layer with its weights), then unit rows.
    const int64_t K = p == 0 ? o.hops : o.pooled_hops;
    auto both = abar.unsqueeze(1).expand({LB, 2, n, n}).reshape({2 * LB, n, n});
    auto h = functional::detail::stack_hops(both, x.view({2 * LB, n, D}), K).view({L, 2 * B * n, (K + 1) * D});
    auto t = torch::empty({L, B, 2, n, D}, options);
    for (int64_t l = 0; l < L; ++l) {
      const int64_t w = p == 0 ? o.gnn_weight(l) : o.pooled_gnn_weight(l, p);
      linear_into(t.select(0, l).view({2 * B * n, D}), h.select(0, l), params[w],
                  o.conv_bias ? params[w + 1] : torch::Tensor());
    }
    unit = unit_rows(t, o.l2_eps, keep);
    nodes = unit.out;

    // Eq. 4 / 9: InfoNCE between corresponding nodes, one similarity matrix per graph pair.
    auto v = side(nodes, 0, n, o.whole_batch), z = side(nodes, 1, n, o.whole_batch);
    auto nce = batched_info_nce(v, z, L, o.tau, o.fill, o.rows, o.cols, keep);
    auto level_nce = nce.per_layer;  // [L]: each layer's mean over its anchors
    auto weighted = level_nce * o.level_weights[p];
    layer_losses = layer_losses.defined() ? layer_losses.add_(weighted) : weighted;
    if (keep) {
      // The output graph's hop features only (the weight gradient's operand), as a copy.
      saved->hops.push_back(h.view({L, B, 2, n, (K + 1) * D}).select(2, 0).reshape({L, B * n, (K + 1) * D}).contiguous());
      saved->abar.push_back(abar);
      saved->unit.insert(saved->unit.end(), {unit.out.select(2, 0), unit.inv.select(2, 0), unit.c.select(2, 0)});
      saved->nce.insert(saved->nce.end(), nce.saved.begin(), nce.saved.end());
    }
    if (levels) {
      levels->adjacency.push_back(adjacency);
      levels->abar.push_back(abar);
      levels->info_nce.push_back(level_nce);
    }
  }
  if (o.average_levels) layer_losses.div_(static_cast<double>(P + 1));
  if (levels) levels->layer_losses = layer_losses;
  return layer_losses.mean();
}

/// `fused_graph_nce` as one autograd node. Inputs that take gradients: G(x)'s maps (`maps_out`)
/// and the parameters (`params`); x's maps are InfoNCE's detached side. Backward, from the top
/// level down, for upstream `g` and level weight `w_p / ((P + 1) L B n_p)` per anchor:
///  - InfoNCE: `dS = softmax_rows(S) + softmax_cols(S) - directions I`, `dV = dS Z w / tau`;
///  - unit rows: `dT = (dV - V (V . dV) c) inv` (functional::detail::L2Normalize);
///  - TAGConv: `dW = dT^T H`, `db = sum dT`, `dH = dT W`, `dX = dH_0 + Abar^T (dH_1 + ...)`;
///  - pooling (level p >= 1): `X_p = sigma(S) V[idx]`: `dV[idx] += sigma dX_p`,
///    `dS = (dX_p . V[idx]) sigma'`, `dp = dS^T Z[idx]`, `db_p = sum dS`;
///  - embedding: unit rows, `dW_e = dE^T X`, `dX = dE W_e`, added into a zero map at the ids.
/// Gradients of gradients are not available (the backward is not differentiable).
struct FusedGraphNCE : public torch::autograd::Function<FusedGraphNCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::TensorList maps_out,
                               const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                               torch::TensorList params, const FusedGraphNCEConfig& config) {
    FusedGraphNCESaved saved;
    auto loss = fused_graph_nce(config, maps_out, maps_in, ids, params, &saved, nullptr);
    auto& d = ctx->saved_data;
    d["L"] = config.layers;
    d["B"] = config.batch;
    d["nodes"] = config.nodes;
    d["hops"] = std::vector<int64_t>{config.hops, config.pooled_hops};
    d["weights"] = config.level_weights;
    d["flags"] = std::vector<int64_t>{config.average_levels, config.rows, config.cols, config.whole_batch,
                                      config.conv_bias,      config.score_bias, config.tanh};
    d["tau"] = config.tau;
    // The parameters the backward multiplies with (read after the forward, before any update).
    std::vector<torch::Tensor> weights;
    for (int64_t l = 0; l < config.layers; ++l) {
      weights.push_back(params[config.embed_weight(l)]);
      weights.push_back(params[config.gnn_weight(l)]);
      for (int64_t p = 1; p <= config.levels(); ++p) weights.push_back(params[config.pooled_gnn_weight(l, p)]);
    }
    // One list through save_for_backward (freed after the backward unless retain_graph), in groups.
    std::vector<torch::Tensor> all;
    std::vector<int64_t> counts;
    using Group = const std::vector<torch::Tensor>*;
    for (Group group : {Group(&saved.sampled), Group(&saved.embed), Group(&saved.hops), Group(&saved.abar),
                        Group(&saved.unit), Group(&saved.nce), Group(&saved.pooled), Group(&ids), Group(&weights)}) {
      counts.push_back(static_cast<int64_t>(group->size()));
      all.insert(all.end(), group->begin(), group->end());
    }
    d["counts"] = counts;
    ctx->save_for_backward(all);
    std::vector<int64_t> shapes;
    for (const auto& map : maps_out)
      for (auto size : map.sizes()) shapes.push_back(size);
    d["map_shapes"] = shapes;
    d["num_params"] = static_cast<int64_t>(params.size());
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "GraphNCELoss: gradients of gradients (backward with create_graph) are not supported");
    auto& d = ctx->saved_data;
    FusedGraphNCEConfig o;
    o.layers = d["L"].toInt();
    o.batch = d["B"].toInt();
    o.nodes = d["nodes"].toIntVector();
    const auto hops = d["hops"].toIntVector();
    o.hops = hops[0];
    o.pooled_hops = hops[1];
    o.level_weights = d["weights"].toDoubleVector();
    const auto flags = d["flags"].toIntVector();
    o.average_levels = flags[0];
    o.rows = flags[1];
    o.cols = flags[2];
    o.whole_batch = flags[3];
    o.conv_bias = flags[4];
    o.score_bias = flags[5];
    o.tanh = flags[6];
    o.tau = d["tau"].toDouble();
    std::vector<std::vector<torch::Tensor>> groups;
    {
      const auto all = ctx->get_saved_variables();
      size_t at = 0;
      for (auto count : d["counts"].toIntVector()) {
        groups.emplace_back(all.begin() + at, all.begin() + at + count);
        at += count;
      }
    }
    const auto &sampled = groups[0], &embed = groups[1], &hop_features = groups[2], &abars = groups[3];
    const auto &unit = groups[4], &nce = groups[5], &pooled = groups[6], &ids = groups[7], &weights = groups[8];
    const auto shapes = d["map_shapes"].toIntVector();
    const int64_t num_params = d["num_params"].toInt();

    const int64_t L = o.layers, B = o.batch, P = o.levels(), LB = L * B;
    const int64_t D = weights[0].size(0);
    const int64_t per_level_nce = 1 + 2 * (o.rows + o.cols);
    const auto weight_of = [&](int64_t l, int64_t which) { return weights[l * (2 + P) + which]; };  // 0 embed, 1 gnn, 1+p
    // Inputs: L output maps, maps_in, ids, the parameters, config (the non-tensor ones get none).
    torch::autograd::variable_list result(L + num_params + 3);
    const auto param_slot = [&](int64_t i) -> torch::Tensor& { return result[L + 2 + i]; };
    // needs_input_grad counts the tensor inputs only: the maps 0..L-1, then the parameters.
    const auto needs = [&](int64_t input) { return ctx->needs_input_grad(input); };
    const double level_scale = (o.average_levels ? static_cast<double>(P + 1) : 1.0) * static_cast<double>(L * B);
    const auto& g = grads[0];

    torch::Tensor d_scattered, scatter_index;  // the pooled level's gradient into the level below
    torch::Tensor dx;
    for (int64_t p = P; p >= 0; --p) {
      const int64_t n = o.nodes[p], K = p == 0 ? o.hops : o.pooled_hops;
      // InfoNCE of level p.
      auto dv = batched_info_nce_backward(&nce[p * per_level_nce], o.rows, o.cols,
                                          g * (o.level_weights[p] / (level_scale * static_cast<double>(n) * o.tau)));
      if (d_scattered.defined()) dv.view({LB, n, D}).scatter_add_(1, scatter_index, d_scattered);
      // Unit rows and TAGConv.
      auto dt = unit_rows_backward(unit[3 * p], unit[3 * p + 1], unit[3 * p + 2], dv.view({L, B, n, D}))
                    .view({L, B * n, D});
      const bool weight_grads = [&] {
        for (int64_t l = 0; l < L; ++l)
          if (needs(L + (p == 0 ? o.gnn_weight(l) : o.pooled_gnn_weight(l, p)))) return true;
        return false;
      }();
      if (weight_grads) {
        auto dw = torch::bmm(dt.transpose(1, 2), hop_features[p]);  // [L, D, (K+1) D]
        auto db = o.conv_bias ? dt.sum(1) : torch::Tensor();
        for (int64_t l = 0; l < L; ++l) {
          const int64_t w = p == 0 ? o.gnn_weight(l) : o.pooled_gnn_weight(l, p);
          param_slot(w) = dw.select(0, l);
          if (o.conv_bias) param_slot(w + 1) = db.select(0, l);
        }
      }
      auto dh = torch::empty({L, B * n, (K + 1) * D}, dt.options());
      for (int64_t l = 0; l < L; ++l)
        functional::detail::matmul_into(dh.select(0, l), dt.select(0, l), weight_of(l, p == 0 ? 1 : 1 + p));
      auto dh_graphs = dh.view({LB, n, (K + 1) * D});
      const auto abar_t = abars[p].transpose(1, 2);
      dx = dh_graphs.narrow(-1, K * D, D);
      for (int64_t k = K - 1; k >= 0; --k) dx = torch::baddbmm(dh_graphs.narrow(-1, k * D, D), abar_t, dx);
      if (p == 0) break;
      // Pooling of level p: X_p = sigma V[idx] on the output graph; the scores are the input graph's.
      const auto &kept = pooled[3 * (p - 1)], &values = pooled[3 * (p - 1) + 1], &gathered = pooled[3 * (p - 1) + 2];
      d_scattered = dx * values.unsqueeze(-1);
      scatter_index = kept.unsqueeze(-1).expand({LB, n, D});
      auto dscore = (dx * gathered.select(2, 0).view({LB, n, D})).sum(-1);  // [L B, n]
      dscore.mul_(o.tanh ? 1 - values * values : values * (1 - values));
      auto dproj = torch::bmm(dscore.view({L, 1, B * n}), gathered.select(2, 1).reshape({L, B * n, D}));  // [L, 1, D]
      auto dproj_bias = o.score_bias ? dscore.view({L, B * n}).sum(1) : torch::Tensor();
      for (int64_t l = 0; l < L; ++l) {
        param_slot(o.pool_weight(l, p)) = dproj.select(0, l);
        if (o.score_bias) param_slot(o.pool_weight(l, p) + 1) = dproj_bias.narrow(0, l, 1);
      }
    }
    // Embedding: unit rows, Linear, and the sampled locations of G(x)'s maps.
    const int64_t N = o.nodes[0];
    auto de = unit_rows_backward(embed[0], embed[1], embed[2], dx.view({L, B, N, D})).view({L, B * N, D});
    auto db = de.sum(1);
    size_t shape_at = 0;
    for (int64_t l = 0; l < L; ++l) {
      const auto& weight = weight_of(l, 0);
      auto de_l = de.select(0, l);
      param_slot(o.embed_weight(l)) = torch::mm(de_l.t(), sampled[l]);
      param_slot(o.embed_weight(l) + 1) = db.select(0, l);
      std::vector<int64_t> map_shape(shapes.begin() + shape_at, shapes.begin() + shape_at + 4);
      shape_at += 4;
      if (!needs(l)) continue;
      result[l] = scatter_patches(map_shape, torch::mm(de_l, weight), ids[l]);
    }
    return result;
  }
};

}  // namespace detail
}  // namespace patchgcl

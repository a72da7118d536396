#pragma once

// GraphNCELoss's options checked, and what its fused node (fused_graph_nce.hpp) reads besides
// its inputs: the settings both passes read, the options only the forward reads, the tensors the
// forward keeps for the backward, and the per-level tensors it records for GraphNCELoss::inspect.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/modules/detail/layers.hpp>
#include <patchgcl/options/graph_nce.hpp>

#include <array>
#include <cmath>
#include <utility>
#include <vector>

namespace patchgcl {
namespace detail {

/// The checks of GraphNCELoss's options (at construction): the multi-layer loss's, then the graph's
/// (hops, pooling levels and their weights, Eq. 1's threshold).
inline void check_graph_nce_options(const GraphNCELossOptions& o, const char* fn) {
  check_loss_options(o, fn);
  TORCH_CHECK(o.hops() >= 0 && o.pooled_hops() >= 0, fn, ": `hops` and `pooled_hops` must be >= 0, got ", o.hops(),
              " and ", o.pooled_hops());
  check_at_least(o.pooling_levels(), 0, fn, "pooling_levels");
  check_at_least(o.down_scale(), 1, fn, "down_scale");
  TORCH_CHECK(static_cast<int64_t>(o.level_weights().size()) >= o.pooling_levels() + 1, fn,
              ": `level_weights` needs pooling_levels + 1 = ", o.pooling_levels() + 1, " entries, got ",
              o.level_weights().size());
  for (size_t p = 0; p < o.level_weights().size(); ++p)
    TORCH_CHECK(std::isfinite(o.level_weights()[p]), fn, ": `level_weights[", p, "]` must be finite, got ",
                o.level_weights()[p]);
  check_cosine_threshold(o.adjacency().threshold(), fn, "adjacency.threshold");
  check_positive(o.adjacency().eps(), fn, "adjacency.eps");
}

/// The settings the forward and the backward read (the backward gets them back through
/// `visit_settings`), and the layout of the flat parameter list.
struct FusedGraphNCESettings {
  int64_t layers = 0, batch = 0;   ///< L feature layers, B images
  std::vector<int64_t> nodes;      ///< nodes per graph at each level: n_0 = N, n_1, ..., n_P
  std::vector<int64_t> map_sizes;  ///< `[B, C_l, H_l, W_l]` of every layer's map of G(x), flat
  int64_t hops = 0, pooled_hops = 0;
  std::vector<double> level_weights;
  bool average_levels = true;
  double tau = 1.0;               ///< InfoNCE's temperature
  bool rows = true, cols = true;  ///< InfoNCE's directions: output to input (rows), input to output
  bool conv_bias = true, score_bias = true;
  ScoreActivation score_activation = ScoreActivation::kSigmoid;

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
  /// The TAGConv weight of level `p` (0: `gnn`, p >= 1: the pooled gnn of level p).
  int64_t conv_weight(int64_t l, int64_t p) const { return p == 0 ? gnn_weight(l) : pooled_gnn_weight(l, p); }
  int64_t conv_hops(int64_t p) const { return p == 0 ? hops : pooled_hops; }
  std::vector<int64_t> map_size(int64_t l) const {
    return std::vector<int64_t>(map_sizes.begin() + 4 * l, map_sizes.begin() + 4 * (l + 1));
  }
};

/// `visit(name, field)` for every field of FusedGraphNCESettings, in one order: what saves the
/// settings in an autograd node and reads them back (fused_graph_nce.hpp).
template <typename Settings, typename Visit>
void visit_settings(Settings& s, Visit&& visit) {
  visit("layers", s.layers);
  visit("batch", s.batch);
  visit("nodes", s.nodes);
  visit("map_sizes", s.map_sizes);
  visit("hops", s.hops);
  visit("pooled_hops", s.pooled_hops);
  visit("level_weights", s.level_weights);
  visit("average_levels", s.average_levels);
  visit("tau", s.tau);
  visit("rows", s.rows);
  visit("cols", s.cols);
  visit("conv_bias", s.conv_bias);
  visit("score_bias", s.score_bias);
  visit("score_activation", s.score_activation);
}

/// The settings and what only the forward reads: Eq. 1's options, the normalisation of `A`,
/// the pooled adjacency, the unit rows' epsilon, InfoNCE's diagonal and negatives.
struct FusedGraphNCEConfig : FusedGraphNCESettings {
  double fill = 0.0;         ///< `diagonal_value / tau`
  bool whole_batch = false;  ///< negatives from the whole batch
  double l2_eps = 1e-12;
  CosineAdjacencyOptions adjacency;
  NormalizeAdjacencyOptions normalize;
  PooledAdjacency pooled = PooledAdjacency::kTwoHop;
};

/// The configuration for `options`, G(x)'s maps `output_features` (float32/float64, one batch
/// size) sampled at `ids` (one `[N]` tensor per layer), and `nodes` (n_0 = N, then the nodes
/// every pooling level keeps).
inline FusedGraphNCEConfig fused_graph_nce_config(const GraphNCELossOptions& o,
                                                  const std::vector<torch::Tensor>& output_features,
                                                  const std::vector<torch::Tensor>& ids, std::vector<int64_t> nodes) {
  FusedGraphNCEConfig c;
  c.layers = static_cast<int64_t>(ids.size());
  c.batch = output_features[0].size(0);
  c.nodes = std::move(nodes);
  for (const auto& map : output_features) c.map_sizes.insert(c.map_sizes.end(), map.sizes().begin(), map.sizes().end());
  c.hops = o.hops();
  c.pooled_hops = o.pooled_hops();
  c.level_weights = o.level_weights();
  c.average_levels = o.average_levels();
  const auto& nce = o.info_nce();
  c.tau = nce.temperature();
  c.rows = nce.direction() != Direction::kInputToOutput;
  c.cols = nce.direction() != Direction::kOutputToInput;
  c.conv_bias = o.conv_bias();
  c.score_bias = o.score_bias();
  c.score_activation = o.score_activation();
  c.fill = functional::detail::scaled_diagonal_value(output_features[0].scalar_type(), c.tau, nce.diagonal_value(),
                                                     "info_nce");
  c.whole_batch = nce.negatives() == Negatives::kWholeBatch;
  c.l2_eps = o.l2_eps();
  c.adjacency = o.adjacency();
  c.normalize = o.normalize();
  c.pooled = o.pooled_adjacency();
  return c;
}

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
  std::vector<torch::Tensor> ids;      ///< per layer: the `[N]` int64 sampled locations
  std::vector<torch::Tensor> weights;  ///< per layer: the embedding's, gnn's and pooled gnns' weights

  /// Every group, in the order they are saved and read back.
  std::array<std::vector<torch::Tensor>*, 9> groups() {
    return {&sampled, &embed, &hops, &abar, &unit, &nce, &pooled, &ids, &weights};
  }
};

/// Per-level tensors of every layer and image for GraphNCELoss::inspect (`[L B, ...]`).
struct FusedGraphNCELevels {
  std::vector<torch::Tensor> adjacency, abar, scores, kept, info_nce;  ///< info_nce: `[L]`
  torch::Tensor layer_losses;                                          ///< `[L]`
};

}  // namespace detail
}  // namespace patchgcl

#pragma once

// What GraphNCELoss::inspect records: the graphs PatchGCL builds, pools and contrasts, per layer,
// for diagnostics such as the paper's Fig. 9 (pooling scores, Laplacian eigenvectors), and the
// functions that fill the records (layer by layer, or from the fused computation's levels).

#include <patchgcl/compat.hpp>
#include <patchgcl/modules/detail/fused_graph_nce_config.hpp>

#include <cstdint>
#include <utility>
#include <vector>

namespace patchgcl {

/// One level of a layer's graph hierarchy: level 0 is the graph of the sampled patches (Eq. 1-4),
/// level p >= 1 the graph kept by pooling level p (Eq. 5-9). `B` images, `n_p` nodes.
struct GraphLevelInspection {
  /// `[B, n_p]` int64: the level's nodes as indices into the layer's sampled patches (level 0:
  /// 0..N-1; level p: the kept nodes of level p-1, mapped back to the patches).
  torch::Tensor nodes;
  /// `[B, n_p, n_p]` 0/1: `A` (Eq. 1, on the input's embedded nodes) or the pooled `A_p`, before
  /// self loops and normalisation, as the loss uses them.
  torch::Tensor adjacency;
  /// `[B, n_p, n_p]`: the normalised `Abar` this level's TAGConv propagates with (Eq. 2-3, 7-8).
  torch::Tensor abar;
  /// `[B, n_p]`: node degrees, the row sums of `adjacency` (its self loops included).
  torch::Tensor degrees;
  /// `[B, n_{p-1}]`: `sigma(S)` of every node of the previous level (Eq. 5, Fig. 9(b));
  /// undefined at level 0.
  torch::Tensor scores;
  /// `[B, n_p]` int64: the kept nodes as indices into the previous level's nodes, by descending
  /// score (TopKPool's `indices`); undefined at level 0.
  torch::Tensor kept;
  /// `[]`: the level's InfoNCE (Eq. 4 at level 0, Eq. 9 at level p), before its weight.
  torch::Tensor info_nce;
  /// `level_weights[p]`.
  double weight = 0.0;
};

/// One feature layer: where its patches were sampled and its graph levels.
struct GraphLayerInspection {
  torch::Tensor patch_ids;                   ///< `[N]` int64: the sampled locations `r * W + c`, shared by the batch
  torch::Tensor rows, cols;                  ///< `[N]` int64: each patch's (row, col) on the `H x W` feature map
  int64_t height = 0, width = 0;             ///< `H`, `W` of the layer's feature map
  std::vector<GraphLevelInspection> levels;  ///< `pooling_levels + 1` entries
  torch::Tensor loss;                        ///< `[]`: the layer's loss (step 6 of GraphNCELoss)
};

/// `GraphNCELoss::inspect`'s result: every layer, and the loss forward computes from them.
struct GraphNCEInspection {
  std::vector<GraphLayerInspection> layers;
  torch::Tensor loss;  ///< `[]`: mean of the layers' losses, forward's value for the same patch ids
};

namespace detail {

/// A layer's record with its sampled patches filled in: the feature map's size, the flat
/// locations `ids` and their (row, col).
inline GraphLayerInspection sampled_patches_record(const torch::Tensor& features, const torch::Tensor& ids) {
  GraphLayerInspection layer;
  layer.height = features.size(2);
  layer.width = features.size(3);
  layer.patch_ids = ids.to(torch::kLong);
  layer.rows = layer.patch_ids.div(layer.width, "floor");
  layer.cols = layer.patch_ids.remainder(layer.width);
  return layer;
}

/// Appends one level to `record`, its tensors detached (`scores` and `kept` undefined at level 0).
inline void record_level(GraphLayerInspection& record, const torch::Tensor& nodes, const torch::Tensor& adjacency,
                         const torch::Tensor& abar, const torch::Tensor& scores, const torch::Tensor& kept,
                         const torch::Tensor& info_nce, double weight) {
  GraphLevelInspection level;
  level.nodes = nodes.contiguous();
  level.adjacency = adjacency.detach();
  level.abar = abar.detach();
  level.degrees = level.adjacency.sum(-1);
  if (scores.defined()) level.scores = scores.detach();
  if (kept.defined()) level.kept = kept.detach();
  level.info_nce = info_nce.detach();
  level.weight = weight;
  record.levels.push_back(std::move(level));
}

/// The records of every layer from the fused computation's per-level tensors (`[L B, ...]`):
/// G(x)'s maps `output_features`, sampled at `ids`, and the levels' weights.
inline std::vector<GraphLayerInspection> fused_layer_records(const FusedGraphNCELevels& levels,
                                                             const std::vector<torch::Tensor>& output_features,
                                                             const std::vector<torch::Tensor>& ids,
                                                             const std::vector<double>& level_weights) {
  const int64_t L = static_cast<int64_t>(ids.size()), B = output_features[0].size(0);
  const auto of_layer = [&](const torch::Tensor& t, int64_t l) { return t.view({L, B, -1}).select(0, l); };
  const auto graphs_of_layer = [&](const torch::Tensor& t, int64_t l) {
    return t.view({L, B, t.size(-2), t.size(-1)}).select(0, l);
  };
  std::vector<GraphLayerInspection> layers;
  for (int64_t l = 0; l < L; ++l) {
    GraphLayerInspection layer = sampled_patches_record(output_features[l], ids[l]);
    const int64_t n = ids[l].size(0);
    torch::Tensor nodes = torch::arange(n, layer.patch_ids.options()).expand({B, n});
    for (size_t p = 0; p < levels.abar.size(); ++p) {
      torch::Tensor scores, kept;
      if (p > 0) {
        scores = of_layer(levels.scores[p - 1], l);
        kept = of_layer(levels.kept[p - 1], l);
        nodes = nodes.gather(-1, kept);
      }
      record_level(layer, nodes, graphs_of_layer(levels.adjacency[p], l), graphs_of_layer(levels.abar[p], l), scores,
                   kept, levels.info_nce[p].select(0, l), level_weights[p]);
    }
    layer.loss = levels.layer_losses.select(0, l);
    layers.push_back(std::move(layer));
  }
  return layers;
}

}  // namespace detail

}  // namespace patchgcl

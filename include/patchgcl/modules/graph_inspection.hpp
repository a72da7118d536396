#pragma once

// What GraphNCELoss::inspect records: the graphs PatchGCL builds, pools and contrasts, per layer,
// for diagnostics such as the paper's Fig. 9 (pooling scores, Laplacian eigenvectors).

#include <patchgcl/compat.hpp>

#include <cstdint>
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
  torch::Tensor patch_ids;      ///< `[N]` int64: the sampled locations `r * W + c`, shared by the batch
  torch::Tensor rows, cols;     ///< `[N]` int64: each patch's (row, col) on the `H x W` feature map
  int64_t height = 0, width = 0;  ///< `H`, `W` of the layer's feature map
  std::vector<GraphLevelInspection> levels;  ///< `pooling_levels + 1` entries
  torch::Tensor loss;           ///< `[]`: the layer's loss (step 6 of GraphNCELoss)
};

/// `GraphNCELoss::inspect`'s result: every layer, and the loss forward computes from them.
struct GraphNCEInspection {
  std::vector<GraphLayerInspection> layers;
  torch::Tensor loss;  ///< `[]`: mean of the layers' losses, forward's value for the same patch ids
};

}  // namespace patchgcl

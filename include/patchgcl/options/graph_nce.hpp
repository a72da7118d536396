#pragma once

#include <patchgcl/options/adjacency.hpp>
#include <patchgcl/options/multi_layer_loss.hpp>
#include <patchgcl/options/topk_pool.hpp>

#include <utility>
#include <vector>

namespace patchgcl {

/// Options of `GraphNCELoss`, the paper's graph loss (Eq. 1-10) over several feature layers.
/// The fields shared with `PatchNCELossOptions` (in_channels, num_patches, nc, l2_eps, init_std,
/// info_nce) are in `MultiLayerLossOptions`. The defaults are the released code's run settings
/// (`reference()`); `paper()` follows the text.
///
///   GraphNCELoss gcl(GraphNCELossOptions::reference({256, 512, 512}));  // VGG16 relu3_1, relu4_1, relu4_3
struct GraphNCELossOptions : MultiLayerLossOptions<GraphNCELossOptions> {
  /// `l2_eps`: the embedding head and the TAGConv outputs are `x / max(||x||, l2_eps)`; the
  /// released code divides by the bare norm, which only differs for zero vectors (where it gives
  /// NaN). `info_nce`: both directions summed, as the released code computes Eq. 4 / 9.
  explicit GraphNCELossOptions(std::vector<int64_t> in_channels)
      : MultiLayerLossOptions(std::move(in_channels), /*l2_eps=*/1e-12, InfoNCEOptions().direction(Direction::kBoth)) {}

  /// Eq. 1 on the input image's embedded features (never differentiated).
  TORCH_ARG(CosineAdjacencyOptions,
            adjacency) = CosineAdjacencyOptions().threshold(0.1).comparison(Comparison::kGreater).normalize(false);
  /// How `A` (and every pooled `A_p`) becomes `Abar`.
  TORCH_ARG(NormalizeAdjacencyOptions, normalize) = NormalizeAdjacencyOptions().self_loops(SelfLoops::kDouble);
  /// `L` of Eq. 2-3.
  TORCH_ARG(int64_t, hops) = 2;
  /// Whether the TAGConvs have the additive bias (the released code's do; Eq. 2 has none).
  TORCH_ARG(bool, conv_bias) = true;
  /// `P` of Eq. 10: levels of top-K pooling after the first graph.
  TORCH_ARG(int64_t, pooling_levels) = 1;
  /// Level `p` keeps `max(2, floor(n_{p-1} / (down_scale * 2^(p-1))))` of the previous level's
  /// `n_{p-1}` nodes (`n_0 = N`): 256 -> 64 for the paper's 1/4, then 64 -> 8 at level 2.
  TORCH_ARG(int64_t, down_scale) = 4;
  /// Hops of the pooled graphs' TAGConvs (Eq. 7-8): 1 in the released code, L in the text.
  TORCH_ARG(int64_t, pooled_hops) = 1;
  /// Weight of each level's InfoNCE, level 0 first; needs `pooling_levels + 1` entries.
  TORCH_ARG(std::vector<double>, level_weights) = std::vector<double>{1.0, 0.5};
  /// Divide each layer's weighted sum by `pooling_levels + 1`, as the released code does.
  TORCH_ARG(bool, average_levels) = true;
  /// Score nonlinearity, score bias and pooled adjacency of every TopKPool (its ratio/k are
  /// set per level from down_scale).
  TORCH_ARG(ScoreActivation, score_activation) = ScoreActivation::kSigmoid;
  TORCH_ARG(bool, score_bias) = true;
  TORCH_ARG(PooledAdjacency, pooled_adjacency) = PooledAdjacency::kTwoHop;

 public:
  /// The released implementation (jcy132/PatchGCL) with its published run settings. Same as
  /// the defaults.
  static GraphNCELossOptions reference(std::vector<int64_t> in_channels) {
    return GraphNCELossOptions(std::move(in_channels));
  }

  /// The paper's text taken literally: `>=` in Eq. 1, one self loop, no biases (Eq. 2, 5),
  /// pooled adjacency induced from A, L-hop pooled TAGConv (Eq. 7-8), Eq. 4 in its one
  /// direction (z_i against v_j) without temperature or a -10 diagonal, and Eq. 10's plain sum
  /// of the levels. See docs/reference-compatibility.md.
  static GraphNCELossOptions paper(std::vector<int64_t> in_channels) {
    GraphNCELossOptions o(std::move(in_channels));
    o.adjacency().comparison(Comparison::kGreaterEqual);
    o.normalize().self_loops(SelfLoops::kOne);
    o.conv_bias(false).score_bias(false).pooled_adjacency(PooledAdjacency::kInduced);
    o.pooled_hops(o.hops()).level_weights({1.0, 1.0}).average_levels(false);
    o.info_nce().direction(Direction::kInputToOutput).temperature(1.0).diagonal_value(InfoNCEOptions::kNoDiagonal);
    return o;
  }
};

}  // namespace patchgcl

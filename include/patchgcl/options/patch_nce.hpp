#pragma once

#include <patchgcl/options/multi_layer_loss.hpp>

#include <utility>
#include <vector>

namespace patchgcl {

/// Options of `PatchNCELoss`: CUT's PatchNCE over several feature layers. The fields shared with
/// `GraphNCELossOptions` are in `MultiLayerLossOptions`; here CUT's `Normalize`, `x / (||x|| +
/// l2_eps)` with `l2_eps = 1e-7`, and InfoNCE from the output's patches (CUT's queries) to the
/// input's (its keys).
///
///   PatchNCELoss nce(PatchNCELossOptions({3, 128, 256, 256, 256}));      // CUT
///   PatchNCELoss put(PatchNCELossOptions::put({3, 128, 256, 256, 256}));  // PUT, k = 5
struct PatchNCELossOptions : MultiLayerLossOptions<PatchNCELossOptions> {
  explicit PatchNCELossOptions(std::vector<int64_t> in_channels)
      : MultiLayerLossOptions(std::move(in_channels), /*l2_eps=*/1e-7, InfoNCEOptions()) {}
  /// Whether the projection head `Linear(C, nc) -> ReLU -> Linear(nc, nc)` (CUT's PatchSampleF)
  /// is used; without it, the sampled features are only L2-normalised.
  TORCH_ARG(bool, use_mlp) = true;

 public:
  /// PUT (Lin et al., ACM MM 2022) as its released code computes it: CUT's loss with the
  /// negative block sorted along dimension 0 and the first `k` columns kept.
  static PatchNCELossOptions put(std::vector<int64_t> in_channels, int64_t k = 5) {
    PatchNCELossOptions o(std::move(in_channels));
    o.info_nce().pruning(Pruning::kReferenceColumnSort).hard_negatives(k);
    return o;
  }
};

}  // namespace patchgcl

#pragma once

#include <patchgcl/options/info_nce.hpp>

#include <utility>
#include <vector>

namespace patchgcl {

/// Options of `PatchNCELoss`: CUT's PatchNCE over several feature layers.
///
///   PatchNCELoss nce(PatchNCELossOptions({3, 128, 256, 256, 256}));      // CUT
///   PatchNCELoss put(PatchNCELossOptions::put({3, 128, 256, 256, 256}));  // PUT, k = 5
struct PatchNCELossOptions {
  /// Channels of each feature layer, in the order the feature maps are passed to forward().
  explicit PatchNCELossOptions(std::vector<int64_t> in_channels) : in_channels_(std::move(in_channels)) {}
  TORCH_ARG(std::vector<int64_t>, in_channels);
  /// Locations sampled per layer, shared by the output (query) and input (key) image.
  TORCH_ARG(int64_t, num_patches) = 256;
  /// Width of the projection head `Linear(C, nc) -> ReLU -> Linear(nc, nc)` (CUT's PatchSampleF).
  TORCH_ARG(int64_t, nc) = 256;
  /// Without the head, the sampled features are only L2-normalised.
  TORCH_ARG(bool, use_mlp) = true;
  /// CUT's Normalize: `x / (||x|| + eps)`.
  TORCH_ARG(double, l2_eps) = 1e-7;
  TORCH_ARG(double, init_std) = 0.02;
  TORCH_ARG(InfoNCEOptions, info_nce) = InfoNCEOptions();

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

#pragma once

// The loop every multi-layer contrastive loss shares (CUT's PatchNCE, PatchGCL's graph loss):
// validate the two feature pyramids, sample one set of locations per layer for both images,
// and average a per-layer loss over the layers.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/functional/patches.hpp>
#include <patchgcl/options/info_nce.hpp>

#include <vector>

namespace patchgcl {
namespace detail {

/// Mean over layers of `layer_loss(layer, query_nodes, key_nodes)`, where the nodes are the
/// `[B, N, C_l]` samples of `output_features[layer]` (the query image G(x)) and
/// `input_features[layer]` (the key image x) at `patch_ids[layer]` (drawn with
/// `random_patch_ids` when `patch_ids` is empty).
template <typename LayerLoss>
torch::Tensor mean_over_layers(const char* fn, const std::vector<int64_t>& in_channels, int64_t num_patches,
                               const std::vector<torch::Tensor>& output_features,
                               const std::vector<torch::Tensor>& input_features,
                               const std::vector<torch::Tensor>& patch_ids, FiniteCheck finite_check,
                               LayerLoss&& layer_loss) {
  const size_t layers = in_channels.size();
  TORCH_CHECK(output_features.size() == layers, fn, ": expected ", layers,
              " output feature maps (one per entry of `in_channels`), got ", output_features.size());
  TORCH_CHECK(input_features.size() == layers, fn, ": expected ", layers,
              " input feature maps (one per entry of `in_channels`), got ", input_features.size());
  TORCH_CHECK(patch_ids.empty() || patch_ids.size() == layers, fn, ": expected ", layers,
              " patch id tensors (one per layer) or none, got ", patch_ids.size());
  torch::Tensor total;
  for (size_t l = 0; l < layers; ++l) {
    const auto out_name = "output_features[" + std::to_string(l) + "]";
    const auto in_name = "input_features[" + std::to_string(l) + "]";
    const auto& out = output_features[l];
    const auto& in = input_features[l];
    check_feature_map(out, fn, out_name.c_str());
    check_feature_map(in, fn, in_name.c_str());
    check_same_shape(out, out_name.c_str(), in, in_name.c_str(), fn);
    check_same_device(out, out_name.c_str(), in, in_name.c_str(), fn);
    TORCH_CHECK(out.size(1) == in_channels[l], fn, ": `", out_name, "` must have ", in_channels[l],
                " channels (in_channels[", l, "]), got shape ", shape_str(out));
    check_finite(out, finite_check, fn, out_name.c_str());
    check_finite(in, finite_check, fn, in_name.c_str());
    const auto ids = patch_ids.empty() ? functional::random_patch_ids(out, num_patches) : patch_ids[l];
    auto loss = layer_loss(l, functional::sample_patches(out, ids, FiniteCheck::kNever),
                           functional::sample_patches(in, ids, FiniteCheck::kNever));
    total = total.defined() ? total + loss : loss;
  }
  total = total / static_cast<double>(layers);
  check_finite_result(total, finite_check, fn, "loss");
  return total;
}

inline void check_in_channels(const std::vector<int64_t>& in_channels, const char* fn) {
  TORCH_CHECK(!in_channels.empty(), fn, ": `in_channels` must list at least one feature layer");
  for (size_t l = 0; l < in_channels.size(); ++l)
    TORCH_CHECK(in_channels[l] >= 1, fn, ": `in_channels[", l, "]` must be >= 1, got ", in_channels[l]);
}

/// The options every multi-layer loss shares, its InfoNCE's included.
inline void check_loss_options(const std::vector<int64_t>& in_channels, int64_t num_patches, int64_t nc,
                               double l2_eps, double init_std, const InfoNCEOptions& info_nce, const char* fn) {
  check_in_channels(in_channels, fn);
  check_info_nce_options(info_nce, fn);
  TORCH_CHECK(info_nce.reduction() == Reduction::kMean, fn,
              ": `info_nce.reduction` must be Reduction::kMean (the loss is one number; per-anchor losses come "
              "from functional::info_nce), got Reduction::kNone");
  check_at_least(num_patches, 2, fn, "num_patches");
  check_at_least(nc, 1, fn, "nc");
  check_positive(l2_eps, fn, "l2_eps");
  check_non_negative(init_std, fn, "init_std");
}

}  // namespace detail
}  // namespace patchgcl

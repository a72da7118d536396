#pragma once

// Patch sampling shared by the input and the output image (CUT's PatchSampleF, PatchGCL's
// GNNLoss): one set of locations per feature layer, used for every image of the batch.

#include <patchgcl/detail/checks.hpp>

namespace patchgcl {
namespace functional {
namespace detail {

/// `num_patches` must fit the `[B, C, H, W]` map (the message names `random_patch_ids`).
inline void check_patch_count(const torch::Tensor& feature_map, int64_t num_patches) {
  const int64_t locations = feature_map.size(2) * feature_map.size(3);
  TORCH_CHECK(num_patches >= 1 && num_patches <= locations,
              "random_patch_ids: `num_patches` must be in [1, H*W = ", locations, "] for a feature map of shape ",
              patchgcl::detail::shape_str(feature_map), ", got ", num_patches);
}

/// `patch_ids` must index the locations of the `[B, C, H, W]` map (messages name `sample_patches`).
inline void check_patch_ids(const torch::Tensor& feature_map, const torch::Tensor& patch_ids) {
  constexpr const char* fn = "sample_patches";
  TORCH_CHECK(patch_ids.defined(), fn, ": `patch_ids` is an undefined tensor");
  patchgcl::detail::check_same_device(patch_ids, feature_map, fn, "patch_ids", "feature_map");
  patchgcl::detail::check_indices(patch_ids, feature_map.size(2) * feature_map.size(3), fn, "patch_ids");
}

/// `random_patch_ids` on checked arguments.
inline torch::Tensor random_patch_ids(const torch::Tensor& feature_map, int64_t num_patches) {
  const int64_t locations = feature_map.size(2) * feature_map.size(3);
  auto perm = torch::randperm(locations, torch::TensorOptions().dtype(torch::kLong).device(feature_map.device()));
  return perm.narrow(0, 0, num_patches);
}

/// `sample_patches` on checked arguments, without the NaN/Inf scan.
inline torch::Tensor sample_patches(const torch::Tensor& feature_map, const torch::Tensor& patch_ids) {
  // gather, not index_select along the last dimension: 1.3x faster forward and, through
  // scatter_add rather than index_add_, 2x faster backward into the map on LibTorch's CPU.
  auto flat = feature_map.flatten(2);  // [B, C, HW]
  auto index = patch_ids.to(torch::kLong).view({1, 1, -1}).expand({flat.size(0), flat.size(1), -1});
  return flat.gather(2, index).transpose(1, 2);  // [B, N, C]
}

}  // namespace detail

/// `num_patches` distinct locations of a `[B, C, H, W]` map, as `h * W + w` indices (int64,
/// on the map's device): the first entries of a random permutation, as the reference code
/// draws them. Uses LibTorch's generator of that device, so `torch::manual_seed` makes it
/// reproducible. Asking for more locations than the map has is an error.
inline torch::Tensor random_patch_ids(const torch::Tensor& feature_map, int64_t num_patches) {
  patchgcl::detail::check_feature_map(feature_map, "random_patch_ids", "feature_map");
  detail::check_patch_count(feature_map, num_patches);
  return detail::random_patch_ids(feature_map, num_patches);
}

/// Node features `[B, N, C]` of a `[B, C, H, W]` map at the locations `patch_ids` (`[N]`,
/// integer, `h * W + w`, repeats allowed). Gradients flow back into the map. On CPU the ids
/// are checked to lie in `[0, H*W)`; on CUDA that check would synchronise, and an id out of
/// range is a device-side assertion of gather. `check_finite` scans the sampled
/// features (not the whole map) for NaN/Inf (see FiniteCheck).
inline torch::Tensor sample_patches(const torch::Tensor& feature_map, const torch::Tensor& patch_ids,
                                    FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "sample_patches";
  patchgcl::detail::check_feature_map(feature_map, fn, "feature_map");
  detail::check_patch_ids(feature_map, patch_ids);
  auto nodes = detail::sample_patches(feature_map, patch_ids);
  if (patchgcl::detail::finite_check_active(check_finite, nodes))
    TORCH_CHECK(patchgcl::detail::all_finite(nodes), fn, ": `feature_map` contains NaN or Inf at the sampled ",
                "locations (shape ", patchgcl::detail::shape_str(feature_map),
                "); pass FiniteCheck::kNever to skip this scan");
  return nodes;
}

}  // namespace functional
}  // namespace patchgcl

#pragma once

// What every multi-layer contrastive loss shares (CUT's PatchNCE, PatchGCL's graph loss): the
// check of its options, and the loop that validates the two feature pyramids once, samples one
// set of locations per layer for both images, and averages a per-layer loss over the layers.
// Used by modules/patch_nce.hpp and modules/graph_nce.hpp only.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/functional/global_info_nce.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/patches.hpp>
#include <patchgcl/options/multi_layer_loss.hpp>

#include <string>
#include <vector>

namespace patchgcl {
namespace detail {

/// Layer `l` exists among the `layers` a loss was built with.
inline void check_layer_index(size_t l, size_t layers, const char* fn) {
  TORCH_CHECK(l < layers, fn, ": layer ", l, " out of range [0, ", layers, ")");
}

/// Sampled nodes of layer `l` carry that layer's `channels` (in_channels[l]) in their last dimension.
inline void check_layer_channels(const torch::Tensor& nodes, size_t l, int64_t channels, const char* fn,
                                 const char* name) {
  TORCH_CHECK(nodes.size(-1) == channels, fn, ": `", name, "` must have ", channels, " channels (in_channels[", l,
              "]), got shape ", shape_str(nodes));
}

/// Eq. 4 / 9 on one level of either loss: InfoNCE over this process's samples, or with the
/// negatives gathered from every process when `options.negatives_from_all_processes()` is set.
template <typename Options>
torch::Tensor contrast(const torch::Tensor& v, const torch::Tensor& z, const Options& options) {
  if (const auto& all = options.negatives_from_all_processes())
    return functional::global_info_nce(v, z, *all, options.info_nce());
  return functional::detail::info_nce(v, z, options.info_nce());
}

/// The options every multi-layer loss shares, its InfoNCE's included.
template <typename Derived>
void check_loss_options(const MultiLayerLossOptions<Derived>& o, const char* fn) {
  TORCH_CHECK(!o.in_channels().empty(), fn, ": `in_channels` must list at least one feature layer");
  for (size_t l = 0; l < o.in_channels().size(); ++l)
    TORCH_CHECK(o.in_channels()[l] >= 1, fn, ": `in_channels[", l, "]` must be >= 1, got ", o.in_channels()[l]);
  functional::detail::check_info_nce_options(o.info_nce(), fn);
  TORCH_CHECK(o.info_nce().reduction() == Reduction::kMean, fn,
              ": `info_nce.reduction` must be Reduction::kMean (the loss is one number; per-anchor losses come "
              "from functional::info_nce), got Reduction::kNone");
  check_at_least(o.num_patches(), 2, fn, "num_patches");
  check_at_least(o.nc(), 1, fn, "nc");
  check_positive(o.l2_eps(), fn, "l2_eps");
  check_non_negative(o.init_std(), fn, "init_std");
}

/// Whether a loss can run all its layers at once (modules/detail/fused_*.hpp): negatives from
/// this process without pruning, float32/float64 feature maps of the parameters' dtype and device,
/// and one batch size and one number of patches for all layers. Arguments the checks will
/// reject answer false, so that the layer-by-layer path raises its messages.
template <typename Derived>
bool fused_layers_apply(const MultiLayerLossOptions<Derived>& options,
                        const std::vector<torch::Tensor>& output_features,
                        const std::vector<torch::Tensor>& input_features, const std::vector<torch::Tensor>& patch_ids,
                        const torch::Tensor& weight) {
  if (options.negatives_from_all_processes() || options.info_nce().pruning() != Pruning::kNone) return false;
  const size_t layers = options.in_channels().size();
  if (output_features.size() != layers || input_features.size() != layers) return false;
  if (!patch_ids.empty() && patch_ids.size() != layers) return false;
  const auto dtype = weight.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64) return false;
  for (size_t l = 0; l < layers; ++l) {
    for (const auto* t : {&output_features[l], &input_features[l]})
      if (!t->defined() || t->dim() != 4 || t->scalar_type() != dtype || t->device() != weight.device() ||
          t->size(0) != output_features[0].size(0))
        return false;
    if (!patch_ids.empty()) {
      const auto& ids = patch_ids[l];
      if (!ids.defined() || ids.dim() != 1 || ids.size(0) != patch_ids[0].size(0) || ids.size(0) < 2) return false;
    }
  }
  return true;
}

/// Checks the two feature pyramids of a multi-layer loss (one `[B, C_l, H_l, W_l]` map per layer
/// of `output_features`, the output image G(x), and of `input_features`, the input image x) and
/// `patch_ids`, and returns the locations to sample per layer: `patch_ids[layer]`, or drawn like
/// `functional::random_patch_ids` (layer by layer, in order) when `patch_ids` is empty.
template <typename Derived>
std::vector<torch::Tensor> checked_patch_ids(const char* fn, const MultiLayerLossOptions<Derived>& options,
                                             const std::vector<torch::Tensor>& output_features,
                                             const std::vector<torch::Tensor>& input_features,
                                             const std::vector<torch::Tensor>& patch_ids) {
  const auto& in_channels = options.in_channels();
  const size_t layers = in_channels.size();
  TORCH_CHECK(output_features.size() == layers, fn, ": expected ", layers,
              " output feature maps (one per entry of `in_channels`), got ", output_features.size());
  TORCH_CHECK(input_features.size() == layers, fn, ": expected ", layers,
              " input feature maps (one per entry of `in_channels`), got ", input_features.size());
  TORCH_CHECK(patch_ids.empty() || patch_ids.size() == layers, fn, ": expected ", layers,
              " patch id tensors (one per layer) or none, got ", patch_ids.size());
  std::vector<torch::Tensor> ids;
  for (size_t l = 0; l < layers; ++l) {
    const auto out_name = "output_features[" + std::to_string(l) + "]";
    const auto in_name = "input_features[" + std::to_string(l) + "]";
    const auto& out = output_features[l];
    const auto& in = input_features[l];
    check_feature_map(out, fn, out_name.c_str());
    check_feature_map(in, fn, in_name.c_str());
    check_same_shape(out, in, fn, out_name.c_str(), in_name.c_str());
    check_same_device(out, in, fn, out_name.c_str(), in_name.c_str());
    TORCH_CHECK(out.size(1) == in_channels[l], fn, ": `", out_name, "` must have ", in_channels[l],
                " channels (in_channels[", l, "]), got shape ", shape_str(out));
    check_finite(out, options.check_finite(), fn, out_name.c_str());
    check_finite(in, options.check_finite(), fn, in_name.c_str());
    if (patch_ids.empty()) {
      functional::detail::check_patch_count(out, options.num_patches());
      ids.push_back(functional::detail::random_patch_ids(out, options.num_patches()));
    } else {
      functional::detail::check_patch_ids(out, patch_ids[l]);
      ids.push_back(patch_ids[l]);
    }
  }
  return ids;
}

/// Mean over layers of `layer_loss(layer, output_nodes, input_nodes)`, where the nodes are the
/// `[B, N, C_l]` samples of `output_features[layer]` (the output image G(x)) and
/// `input_features[layer]` (the input image x) at `patch_ids[layer]` (drawn like
/// `functional::random_patch_ids` when `patch_ids` is empty). Every argument is checked here,
/// once (`checked_patch_ids`); `layer_loss` computes on checked nodes. The result is scanned for
/// overflow when `options.check_finite()` says so. `used_ids`, when given, receives the ids of
/// every layer (the drawn ones included), for GraphNCELoss::inspect.
template <typename Derived, typename LayerLoss>
torch::Tensor mean_over_layers(const char* fn, const MultiLayerLossOptions<Derived>& options,
                               const std::vector<torch::Tensor>& output_features,
                               const std::vector<torch::Tensor>& input_features,
                               const std::vector<torch::Tensor>& patch_ids, LayerLoss&& layer_loss,
                               std::vector<torch::Tensor>* used_ids = nullptr) {
  const auto ids = checked_patch_ids(fn, options, output_features, input_features, patch_ids);
  if (used_ids) *used_ids = ids;
  torch::Tensor total;
  for (size_t l = 0; l < ids.size(); ++l) {
    auto loss = layer_loss(l, functional::detail::sample_patches(output_features[l], ids[l]),
                           functional::detail::sample_patches(input_features[l], ids[l]));
    total = total.defined() ? total + loss : loss;
  }
  total = total / static_cast<double>(ids.size());
  check_finite_result(total, options.check_finite(), fn, "loss");
  return total;
}

}  // namespace detail
}  // namespace patchgcl

#pragma once

#include <patchgcl/options/finite_check.hpp>
#include <patchgcl/options/info_nce.hpp>
#include <patchgcl/options/key_all_gather.hpp>

#include <memory>

#include <utility>
#include <vector>

namespace patchgcl {

/// The options every multi-layer contrastive loss has (`GraphNCELossOptions`,
/// `PatchNCELossOptions`): the feature layers, the sampled locations, the head width, the head's
/// L2 epsilon and initialisation, and the InfoNCE of Eq. 4 / 9. `Derived` is the loss's own
/// options struct, so that every setter returns it and calls chain across both levels:
///
///   auto o = GraphNCELossOptions({256, 512}).num_patches(64).hops(1);
template <typename Derived>
struct MultiLayerLossOptions {
// TORCH_ARG, with the setters returning `Derived&` instead of this base.
#define PATCHGCL_LOSS_ARG(T, name)                         \
 public:                                                   \
  Derived& name(const T& new_##name) {                     \
    this->name##_ = new_##name;                            \
    return static_cast<Derived&>(*this);                   \
  }                                                        \
  Derived& name(T&& new_##name) {                          \
    this->name##_ = std::move(new_##name);                 \
    return static_cast<Derived&>(*this);                   \
  }                                                        \
  const T& name() const noexcept { return this->name##_; } \
  T& name() noexcept { return this->name##_; }             \
                                                           \
 private:                                                  \
  T name##_

  /// Channels of each feature layer, in the order the feature maps are passed to forward().
  PATCHGCL_LOSS_ARG(std::vector<int64_t>, in_channels);
  /// `N`: locations sampled per layer (the nodes of each graph), shared by the output image G(x)
  /// and the input image x.
  PATCHGCL_LOSS_ARG(int64_t, num_patches) = 256;
  /// Width of the projection / embedding head (and, in GraphNCELoss, of every TAGConv).
  PATCHGCL_LOSS_ARG(int64_t, nc) = 256;
  /// The epsilon of the head's L2 normalisation (the loss's own struct documents its form).
  PATCHGCL_LOSS_ARG(double, l2_eps);
  /// Head weights are drawn from N(0, init_std^2), biases are zero.
  PATCHGCL_LOSS_ARG(double, init_std) = 0.02;
  /// Eq. 4 / 9 per graph (CUT's PatchNCE, PUT's pruning).
  PATCHGCL_LOSS_ARG(InfoNCEOptions, info_nce);
  /// Negatives also from the other processes' input nodes (data-parallel training): a forward-only
  /// all_gather, e.g. `patchgcl::distributed::key_all_gather(group)` of <patchgcl/distributed.hpp>.
  /// Needs `info_nce.negatives == Negatives::kWholeBatch` and no pruning; then every input node
  /// of the global batch (all images of all processes, same layer and graph level) is a negative
  /// and `functional::global_info_nce` replaces `info_nce` (docs/distributed.md). Null: this
  /// process only.
  PATCHGCL_LOSS_ARG(std::shared_ptr<KeyAllGather>, negatives_from_all_processes) = nullptr;
  /// NaN/Inf scan of the feature maps and of the loss, the one switch of both losses: on by
  /// default on CPU, opt-in on CUDA, where it needs the host (see FiniteCheck). The layers inside
  /// (TAGConv, pooling) get the same setting; `info_nce().check_finite()` is the functional
  /// info_nce's own and is not read by the losses.
  PATCHGCL_LOSS_ARG(FiniteCheck, check_finite) = FiniteCheck::kAuto;

#undef PATCHGCL_LOSS_ARG

 protected:
  MultiLayerLossOptions(std::vector<int64_t> in_channels, double l2_eps, InfoNCEOptions info_nce)
      : in_channels_(std::move(in_channels)), l2_eps_(l2_eps), info_nce_(std::move(info_nce)) {}
};

}  // namespace patchgcl

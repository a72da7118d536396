// The feature/loss factory: which features the contrastive loss compares (the generator's encoder
// or a frozen VGG16) and which library loss compares them (GraphNCELoss, PatchNCELoss or
// PatchNCELoss::put), behind one call signature the training step uses.
#pragma once

#include "trainer/data/image_tensor.hpp"
#include "trainer/nets/generator.hpp"
#include "trainer/nets/vgg16.hpp"
#include "trainer/train/config.hpp"

#include <patchgcl/patchgcl.hpp>

#include <fmt/format.h>

#include <functional>
#include <memory>

namespace trainer {

/// Maps images to the feature maps the contrastive loss compares; one per loss layer.
class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  virtual std::vector<torch::Tensor> operator()(const torch::Tensor& images) = 0;
  /// Channels of each returned map, the `in_channels` of the loss.
  virtual std::vector<int64_t> channels() const = 0;
};

/// CUT: the generator's own encoder activations (layers 0,4,8,12,16 by default); gradients of the
/// contrastive loss flow into the encoder through both the query and (for the identity term) the key path.
class EncoderFeatures : public FeatureExtractor {
 public:
  EncoderFeatures(ResnetGenerator generator, std::vector<int64_t> layers)
      : generator_(std::move(generator)), layers_(std::move(layers)) {}
  /// `images` of either domain go through the encoder in its input channels (to_channels).
  std::vector<torch::Tensor> operator()(const torch::Tensor& images) override {
    return generator_->encode(to_channels(images, generator_->options.input_nc()), layers_);
  }
  std::vector<int64_t> channels() const override { return generator_->channels(layers_); }

 private:
  ResnetGenerator generator_;
  std::vector<int64_t> layers_;
};

/// PatchGCL: frozen ImageNet VGG16 at relu3_1, relu4_1, relu4_3.
class VGG16FeatureExtractor : public FeatureExtractor {
 public:
  explicit VGG16FeatureExtractor(VGG16Features vgg) : vgg_(std::move(vgg)) { vgg_->eval(); }
  std::vector<torch::Tensor> operator()(const torch::Tensor& images) override {
    return vgg_->forward(to_channels(images, 3), VGG16FeaturesImpl::paper_layers());  // gray: repeated
  }
  std::vector<int64_t> channels() const override { return {256, 512, 512}; }

 private:
  VGG16Features vgg_;
};

/// The features `kind` names: `generator`'s encoder, or VGG16 loaded from `vgg_weights` (empty:
/// default_vgg16_weights()) onto `device`.
inline std::unique_ptr<FeatureExtractor> make_features(FeatureKind kind, const ResnetGenerator& generator,
                                                       const std::string& vgg_weights, torch::Device device) {
  if (kind == FeatureKind::kEncoder)
    return std::make_unique<EncoderFeatures>(generator, generator->default_nce_layers());
  VGG16Features vgg;
  vgg->load_weights(vgg16_weights_or_default(vgg_weights));
  vgg->to(device);
  return std::make_unique<VGG16FeatureExtractor>(vgg);
}

/// The library loss behind one call signature; `module` owns the heads (CUT's netF).
struct ContrastiveCriterion {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&, const std::vector<torch::Tensor>&)> forward;
  /// Negatives also from the keys of every process (null: this process's only).
  std::function<void(std::shared_ptr<patchgcl::KeyAllGather>)> set_negatives_from_all_processes;
};

namespace detail {
/// `loss` behind the criterion's signature.
template <typename Loss>
ContrastiveCriterion criterion_of(Loss loss) {
  return {loss.ptr(), [loss](const auto& output, const auto& input) mutable { return loss->forward(output, input); },
          [loss](std::shared_ptr<patchgcl::KeyAllGather> keys) mutable {
            loss->options.negatives_from_all_processes(std::move(keys));
          }};
}
/// The InfoNCE negatives of `kind` in `options` (global: the minibatch's, plus the other
/// processes' once set_negatives_from_all_processes gives their keys).
template <typename Options>
void set_negatives(Options& options, NegativesKind kind) {
  if (kind != NegativesKind::kImage) options.info_nce().negatives(patchgcl::Negatives::kWholeBatch);
}
}  // namespace detail

/// L_c of paper Eq. 10-11 on feature maps of `channels`, sampling `num_patches` locations per
/// layer, with the InfoNCE negatives of `negatives`.
inline ContrastiveCriterion make_criterion(LossKind kind, std::vector<int64_t> channels, int64_t num_patches,
                                           NegativesKind negatives = NegativesKind::kImage) {
  switch (kind) {
    case LossKind::kGraph: {
      auto options = patchgcl::GraphNCELossOptions(std::move(channels));
      options.num_patches(num_patches);
      detail::set_negatives(options, negatives);
      return detail::criterion_of(patchgcl::GraphNCELoss(options));
    }
    case LossKind::kPatchNCE:
    case LossKind::kPUT: {
      auto options = kind == LossKind::kPUT ? patchgcl::PatchNCELossOptions::put(std::move(channels))
                                            : patchgcl::PatchNCELossOptions(std::move(channels));
      options.num_patches(num_patches);
      detail::set_negatives(options, negatives);
      return detail::criterion_of(patchgcl::PatchNCELoss(options));
    }
  }
  throw std::logic_error("unhandled loss kind");
}

}  // namespace trainer

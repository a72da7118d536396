// Everything that defines a training run. A checkpoint stores it as text, `translate` and
// `evaluate` rebuild the networks from it, and `--resume` refuses to continue under a different one.
// Each option is written once, as a row of config_options() (config_options.hpp): the command
// line, validate(), serialize(), parse_config_text and differences() all read the table.
#pragma once

#include "trainer/data/dataset.hpp"
#include "trainer/train/option_spec.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace trainer {

/// Contrastive term of the objective (paper Eq. 10-11 with L_c one of these).
enum class LossKind { kGraph /* PatchGCL GraphNCELoss */, kPatchNCE /* CUT */, kPUT /* PatchNCE + negative pruning */ };
/// Where the contrastive features come from.
enum class FeatureKind {
  kEncoder /* the generator's own encoder, CUT */,
  kVGG16 /* frozen ImageNet VGG16, PatchGCL */
};
/// The negatives of each query patch in InfoNCE (Eq. 4): the other patches of its own image (CUT's
/// default, the papers'), of every image of this process's minibatch (CUT's
/// --nce_includes_all_negatives_from_minibatch), or of every image of every process (the global
/// batch of a data-parallel run; the minibatch in one process).
enum class NegativesKind { kImage, kMinibatch, kGlobal };

/// Each enumerator's text on the command line and in config.txt.
template <typename E>
using EnumNames = std::vector<std::pair<std::string, E>>;
inline const EnumNames<LossKind>& loss_names() {
  static const EnumNames<LossKind> names = {
      {"graph", LossKind::kGraph}, {"patchnce", LossKind::kPatchNCE}, {"put", LossKind::kPUT}};
  return names;
}
inline const EnumNames<FeatureKind>& feature_names() {
  static const EnumNames<FeatureKind> names = {{"encoder", FeatureKind::kEncoder}, {"vgg16", FeatureKind::kVGG16}};
  return names;
}
inline const EnumNames<NegativesKind>& negatives_names() {
  static const EnumNames<NegativesKind> names = {
      {"image", NegativesKind::kImage}, {"minibatch", NegativesKind::kMinibatch}, {"global", NegativesKind::kGlobal}};
  return names;
}
template <typename E>
std::string name_of(const EnumNames<E>& names, E e) {
  for (const auto& [text, value] : names)
    if (value == e) return text;
  throw std::logic_error("an enumerator without a name");
}
inline std::string to_string(LossKind k) { return name_of(loss_names(), k); }
inline std::string to_string(FeatureKind k) { return name_of(feature_names(), k); }
inline std::string to_string(NegativesKind k) { return name_of(negatives_names(), k); }

struct TrainConfig;
/// Every option of a training configuration, in the order `train --help` lists them and validate()
/// checks them (config_options.hpp, included below TrainConfig).
const std::vector<OptionSpec<TrainConfig>>& config_options();

struct TrainConfig {
  DataOptions data;
  LossKind loss = LossKind::kGraph;
  FeatureKind features = FeatureKind::kEncoder;
  NegativesKind negatives = NegativesKind::kImage;
  /// Weight of the contrastive term; negative means the per-feature default (default_lambda()).
  double lambda_nce = -1.0;
  double lambda_gan = 1.0;
  /// Identity term on Y: L_c(Y, G(Y)) averaged with L_c(X, G(X)) (CUT, PatchGCL Eq. 11).
  bool nce_idt = true;
  /// FastCUT's flip equivariance: with probability 1/2 per step the generator's input is flipped
  /// horizontally and the translation's features are flipped back before the contrastive term.
  bool flip_equivariance = false;
  int64_t num_patches = 256;
  int64_t ngf = 64, n_blocks = 9, ndf = 64;
  /// Channels of domain A (the generator's input) and of domain B (its output, the discriminator's
  /// input): 1 (grayscale) or 3 (RGB), CUT's --input_nc / --output_nc. Images are read as RGB and
  /// converted (to_channels: BT.601 luma, or repetition) when a batch is assembled.
  int64_t input_nc = 3, output_nc = 3;
  int batch_size = 1;
  /// Total optimisation steps; the learning rate is constant, then decays linearly to 0 over the
  /// last `decay_steps` (CUT's n_epochs / n_epochs_decay, counted in steps).
  /// `decay_steps` < 0 means half of `steps`.
  int64_t steps = 1000, decay_steps = -1;
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
  uint64_t seed = 0;

  /// CUT's lambda_NCE 1 with generator-encoder features; the paper's 0.1 with VGG16 features.
  double default_lambda() const { return features == FeatureKind::kVGG16 ? 0.1 : 1.0; }
  /// Side of the training images.
  int64_t synthetic_size_or_crop() const { return data.root == kSyntheticData ? data.synthetic_size : data.crop_size; }
  int64_t decay() const { return decay_steps >= 0 ? decay_steps : steps / 2; }
  double lambda() const { return lambda_nce >= 0 ? lambda_nce : default_lambda(); }

  /// Learning-rate multiplier at `step` (0-based): 1 until steps - decay_steps, then linear to ~0.
  double lr_factor(int64_t step) const {
    int64_t start = steps - decay();
    return 1.0 - static_cast<double>(std::max<int64_t>(0, step - start)) / static_cast<double>(decay() + 1);
  }

  /// Sets what follows from other options: the data's seed (--seed) and, with the embedded dataset,
  /// the load and crop size (its images' side, --synthetic-size).
  void derive_data_options() {
    data.seed = seed;
    if (data.root == kSyntheticData) data.load_size = data.crop_size = data.synthetic_size;
  }
  /// The configuration as a checkpoint holds it: --lambda and --decay-steps resolved from their
  /// defaults (a negative value) to the values the run uses.
  TrainConfig resolved() const {
    TrainConfig c = *this;
    c.lambda_nce = lambda();
    c.decay_steps = decay();
    return c;
  }

  /// `key=value` lines in key order: every option that applies to the run (config_options()); the
  /// data options of the other modes (load_size and synthetic_* in single-image mode, ...) are left
  /// out, so config.txt and the report list what applies to the run. parse_config_text
  /// (config_text.hpp) reads it back with the command line's rules.
  std::string serialize() const {
    std::string out;
    for (const auto& [k, v] : write_options(config_options(), resolved())) out += k + "=" + v + "\n";
    return out;
  }

  /// Human-readable list of options where `other` differs ("ngf: 16 (checkpoint) vs 32 (command line)").
  std::vector<std::string> differences(const TrainConfig& other) const {
    return option_differences(config_options(), resolved(), other.resolved());
  }

  /// Rejects every value a run cannot train with (each option's rule, where the option applies),
  /// naming the option, what it accepts and the value given. Called before any data is loaded or
  /// network built (train() and the Trainer).
  void validate() const { check_options(config_options(), *this); }
};

}  // namespace trainer

// The table's rows, below the struct whose members they name.
#include "trainer/train/config_options.hpp"

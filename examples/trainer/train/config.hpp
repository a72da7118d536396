// Everything that defines a training run. A checkpoint stores it as text, `translate` and
// `evaluate` rebuild the networks from it, and `--resume` refuses to continue under a different one.
#pragma once

#include "trainer/data/dataset.hpp"
#include "trainer/nets/discriminator.hpp"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

/// Contrastive term of the objective (paper Eq. 10-11 with L_c one of these).
enum class LossKind { kGraph /* PatchGCL GraphNCELoss */, kPatchNCE /* CUT */, kPUT /* PatchNCE + negative pruning */ };
/// Where the contrastive features come from.
enum class FeatureKind { kEncoder /* the generator's own encoder, CUT */, kVGG16 /* frozen ImageNet VGG16, PatchGCL */ };
/// The negatives of each query patch in InfoNCE (Eq. 4): the other patches of its own image (CUT's
/// default, the papers'), of every image of this process's minibatch (CUT's
/// --nce_includes_all_negatives_from_minibatch), or of every image of every process (the global
/// batch of a data-parallel run; the minibatch in one process).
enum class NegativesKind { kImage, kMinibatch, kGlobal };

inline std::string to_string(LossKind k) {
  return k == LossKind::kGraph ? "graph" : k == LossKind::kPatchNCE ? "patchnce" : "put";
}
inline std::string to_string(FeatureKind k) { return k == FeatureKind::kEncoder ? "encoder" : "vgg16"; }
inline LossKind parse_loss(const std::string& s) {
  if (s == "graph") return LossKind::kGraph;
  if (s == "patchnce") return LossKind::kPatchNCE;
  if (s == "put") return LossKind::kPUT;
  throw std::invalid_argument("unknown loss '" + s + "' (expected graph, patchnce or put)");
}
inline std::string to_string(NegativesKind k) {
  return k == NegativesKind::kImage ? "image" : k == NegativesKind::kMinibatch ? "minibatch" : "global";
}
inline NegativesKind parse_negatives(const std::string& s) {
  if (s == "image") return NegativesKind::kImage;
  if (s == "minibatch") return NegativesKind::kMinibatch;
  if (s == "global") return NegativesKind::kGlobal;
  throw std::invalid_argument("--negatives must be image, minibatch or global (got '" + s + "')");
}
inline FeatureKind parse_features(const std::string& s) {
  if (s == "encoder") return FeatureKind::kEncoder;
  if (s == "vgg16") return FeatureKind::kVGG16;
  throw std::invalid_argument("unknown feature extractor '" + s + "' (expected encoder or vgg16)");
}

/// Throws std::invalid_argument("OPTION must be EXPECTED (got ACTUAL)"): every configuration error
/// names the command-line option, what it accepts and what it was given.
[[noreturn]] inline void bad_option(const std::string& option, const std::string& expected, const std::string& actual) {
  throw std::invalid_argument(option + " must be " + expected + " (got " + actual + ")");
}
/// The shortest text that reads back as exactly `v` ("0.0002", not "0.00020000000000000001"):
/// what a user wrote on the command line comes back as written, in config.txt and in messages.
inline std::string format_number(double v) { return fmt::format("{}", v); }

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

  /// `key=value` lines; every field that changes what a step computes, and only those: the data
  /// options of the other modes (load_size and synthetic_* in single-image mode, ...) are left out,
  /// so config.txt and the report list what applies to the run .
  std::map<std::string, std::string> fields() const {
    std::map<std::string, std::string> f = {{"data", data.root}, {"flip", std::to_string(data.flip)}};
    if (data.root == kSyntheticData) {
      f["synthetic_size"] = std::to_string(data.synthetic_size);
      f["synthetic_count"] = std::to_string(data.synthetic_count);
    } else {
      f["single_image"] = std::to_string(data.single_image);
      f["crop_size"] = std::to_string(data.crop_size);
      if (data.single_image) f["min_zoom"] = format_number(data.min_zoom);
      else f["load_size"] = std::to_string(data.load_size);
    }
    f.merge(std::map<std::string, std::string>{
        {"loss", to_string(loss)}, {"features", to_string(features)}, {"lambda_nce", format_number(lambda())},
        {"lambda_gan", format_number(lambda_gan)}, {"nce_idt", std::to_string(nce_idt)},
        {"num_patches", std::to_string(num_patches)}, {"ngf", std::to_string(ngf)},
        {"n_blocks", std::to_string(n_blocks)}, {"ndf", std::to_string(ndf)},
        {"batch_size", std::to_string(batch_size)}, {"steps", std::to_string(steps)},
        {"decay_steps", std::to_string(decay())}, {"lr", format_number(lr)}, {"beta1", format_number(beta1)},
        {"beta2", format_number(beta2)}, {"seed", std::to_string(seed)}});
    // Listed when not the default, so that the configurations of runs before the option stay as they were.
    if (negatives != NegativesKind::kImage) f["negatives"] = to_string(negatives);
    if (flip_equivariance) f["flip_equivariance"] = "1";
    if (input_nc != 3) f["input_nc"] = std::to_string(input_nc);
    if (output_nc != 3) f["output_nc"] = std::to_string(output_nc);
    return f;
  }

  std::string serialize() const {
    std::string out;
    for (const auto& [k, v] : fields()) out += k + "=" + v + "\n";
    return out;
  }

  // Reading the text back (a checkpoint's configuration) is parse_config_text (config_text.hpp):
  // every value is checked with the command line's rules.

  /// Human-readable list of fields where `other` differs ("ngf: 16 (checkpoint) vs 32 (command line)").
  std::vector<std::string> differences(const TrainConfig& other) const {
    std::vector<std::string> out;
    auto a = fields(), b = other.fields();
    for (auto* f : {&a, &b})  // listed when not the default
      f->emplace("input_nc", "3"), f->emplace("output_nc", "3"), f->emplace("flip_equivariance", "0");
    for (const auto& [k, v] : b) a.emplace(k, "(not set)");  // a field of the other data mode
    for (const auto& [k, v] : a)
      if (b.emplace(k, "(not set)").first->second != v)
        out.push_back(fmt::format("{}: {} (checkpoint) vs {} (command line)", k, v, b[k]));
    return out;
  }

  /// Rejects every value a run cannot train with, naming the option, the accepted range and the
  /// value given. Called before any data is loaded or network built (train() and the Trainer).
  void validate() const {
    auto at_least = [](const char* option, int64_t value, int64_t min) {
      if (value < min) bad_option(option, "at least " + std::to_string(min), std::to_string(value));
    };
    const int64_t min_side = smallest_image_side();
    const std::string side_rule = "a multiple of 4 and at least " + std::to_string(min_side) +
                                  " (the generator downsamples twice; smaller images leave the discriminator no output)";
    if (data.root.empty()) bad_option("--data", "'" + kSyntheticData + "' or a folder", "''");
    if (data.root == kSyntheticData) {
      if (data.synthetic_size < min_side || data.synthetic_size % 4 != 0)
        bad_option("--synthetic-size", side_rule, std::to_string(data.synthetic_size));
      at_least("--synthetic-count", data.synthetic_count, 1);
    } else {
      if (data.crop_size < min_side || data.crop_size % 4 != 0)
        bad_option("--crop-size", side_rule, std::to_string(data.crop_size));
      if (!data.single_image && data.load_size < data.crop_size)
        bad_option("--load-size", "at least --crop-size (" + std::to_string(data.crop_size) + ")",
                   std::to_string(data.load_size));
      if (data.single_image && !(data.min_zoom > 0.0 && data.min_zoom <= 1.0))
        bad_option("--min-zoom", "in (0, 1]", format_number(data.min_zoom));
    }
    if (!std::isfinite(lambda_nce)) bad_option("--lambda", "a finite number (negative: the default)", format_number(lambda_nce));
    if (!(std::isfinite(lambda_gan) && lambda_gan >= 0)) bad_option("--lambda-gan", "a finite number >= 0", format_number(lambda_gan));
    if (input_nc != 1 && input_nc != 3) bad_option("--input-nc", "1 (grayscale) or 3 (RGB)", std::to_string(input_nc));
    if (output_nc != 1 && output_nc != 3) bad_option("--output-nc", "1 (grayscale) or 3 (RGB)", std::to_string(output_nc));
    at_least("--num-patches", num_patches, 2);
    at_least("--ngf", ngf, 1);
    at_least("--n-blocks", n_blocks, 1);
    at_least("--ndf", ndf, 1);
    at_least("--batch-size", batch_size, 1);
    at_least("--steps", steps, 0);
    if (decay() > steps)
      bad_option("--decay-steps", "at most --steps (" + std::to_string(steps) + ")", std::to_string(decay_steps));
    if (!(std::isfinite(lr) && lr > 0)) bad_option("--lr", "a finite number > 0", format_number(lr));
    if (!(beta1 >= 0 && beta1 < 1)) bad_option("beta1", "in [0, 1)", format_number(beta1));
    if (!(beta2 >= 0 && beta2 < 1)) bad_option("beta2", "in [0, 1)", format_number(beta2));
    if (negatives != NegativesKind::kImage && loss == LossKind::kPUT)
      bad_option("--negatives", "image with --loss put (PUT prunes each image's own negatives)", to_string(negatives));
  }
};

}  // namespace trainer

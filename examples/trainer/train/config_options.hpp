// The options of a training configuration, one row each (OptionSpec, option_spec.hpp): the command
// line's names and help, config.txt's key, the rule a value must meet, the mode the option applies
// in, and how a checkpoint holds it. Adding an option to TrainConfig means adding its row here:
// `train --help`, the checks, config.txt, the checkpoint and the resume comparison follow from it.
#pragma once

#include "trainer/nets/discriminator.hpp"
#include "trainer/train/config.hpp"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

namespace trainer {

namespace config_rules {

/// Rules: what a value must be, or "" when it is acceptable.
inline auto at_least(int64_t min) {
  return [min](const TrainConfig&, const auto& v) {
    return static_cast<int64_t>(v) < min ? "at least " + std::to_string(min) : std::string();
  };
}
/// The side of a training image.
inline std::string image_side(const TrainConfig&, int side) {
  const int64_t min_side = smallest_image_side();
  if (side >= min_side && side % 4 == 0) return {};
  return "a multiple of 4 and at least " + std::to_string(min_side) +
         " (the generator downsamples twice; smaller images leave the discriminator no output)";
}
inline std::string channels(const TrainConfig&, int64_t nc) {
  return nc == 1 || nc == 3 ? std::string() : "1 (grayscale) or 3 (RGB)";
}
inline std::string adam_beta(const TrainConfig&, double beta) {
  return beta >= 0 && beta < 1 ? std::string() : "in [0, 1)";
}

/// Why an option of the data folders does nothing with the embedded dataset, and what to use instead.
inline std::string with_embedded_dataset(const std::string& instead) {
  return "with the embedded dataset (--data synthetic), whose images are --synthetic-size square: " + instead;
}
/// An option of training on --data FOLDER.
inline auto folders_only(std::string instead) {
  return [instead](const TrainConfig& c) {
    return c.data.root == kSyntheticData ? with_embedded_dataset(instead) : std::string();
  };
}
/// An option of the embedded dataset.
inline std::string embedded_only(const TrainConfig& c) {
  if (c.data.root == kSyntheticData) return {};
  return fmt::format(
      "with --data '{}' (it sizes the embedded dataset): the folder's images are resized to --load-size "
      "and cropped to --crop-size",
      c.data.root);
}
/// --load-size: folder images resized before the crop.
inline std::string whole_images_only(const TrainConfig& c) {
  if (c.data.single_image)
    return "with --single-image (crops are taken from the whole image at random scales): --min-zoom sets the smallest "
           "crop, --crop-size its side";
  return folders_only("set --synthetic-size, or train on a folder with --data FOLDER")(c);
}
/// --min-zoom: the crops of single-image training.
inline std::string single_image_only(const TrainConfig& c) {
  if (c.data.root == kSyntheticData)
    return with_embedded_dataset("--min-zoom sets the crops of --single-image training on --data FOLDER");
  if (c.data.single_image) return {};
  return "without --single-image (folder images are resized to --load-size, then cropped): add --single-image for "
         "random-scale crops of one image per domain";
}

}  // namespace config_rules

/// The data: where the images come from and how a sample is cut from them.
inline std::vector<OptionSpec<TrainConfig>> data_options() {
  using namespace config_rules;
  using C = TrainConfig;
  using D = DataOptions;
  return {
      option(
          "--data", "data", &C::data, &D::root, "'synthetic' or a folder with trainA/ trainB/ [testA/ testB/]",
          [](const C&, const std::string& root) { return root.empty() ? "'synthetic' or a folder" : std::string(); }),
      option("--single-image", "single_image", &C::data, &D::single_image,
             "one image per domain, random crops at random scales")
          .applies_when(
              folders_only("single-image training needs --data FOLDER with one image in trainA/ and trainB/")),
      option("--crop-size", "crop_size", &C::data, &D::crop_size, "random crop size (multiple of 4)", image_side)
          .applies_when(folders_only("set --synthetic-size, or train on a folder with --data FOLDER")),
      option("--load-size", "load_size", &C::data, &D::load_size, "resize folder images to this square size",
             [](const C& c, int load) {
               return load < c.data.crop_size ? fmt::format("at least --crop-size ({})", c.data.crop_size) : "";
             })
          .applies_when(whole_images_only),
      option("--min-zoom", "min_zoom", &C::data, &D::min_zoom, "smallest single-image crop, fraction of the short side",
             [](const C&, double zoom) { return zoom > 0.0 && zoom <= 1.0 ? std::string() : "in (0, 1]"; })
          .applies_when(single_image_only),
      option("!--no-flip", "flip", &C::data, &D::flip, "disable random horizontal flips"),
      option("--synthetic-size", "synthetic_size", &C::data, &D::synthetic_size,
             "side of the embedded dataset's images", image_side)
          .applies_when(embedded_only),
      option("--synthetic-count", "synthetic_count", &C::data, &D::synthetic_count,
             "images per domain of the embedded dataset", at_least(1))
          .applies_when(embedded_only),
  };
}

/// The networks and the objective.
inline std::vector<OptionSpec<TrainConfig>> model_options() {
  using namespace config_rules;
  using C = TrainConfig;
  return {
      choice("--loss", "loss", &C::loss, loss_names(), "contrastive term"),
      choice("--features", "features", &C::features, feature_names(),
             "contrastive features: the generator's encoder or VGG16"),
      choice("--negatives", "negatives", &C::negatives, negatives_names(),
             "InfoNCE negatives of a patch: the other patches of its image, of the minibatch (CUT's "
             "--nce_includes_all_negatives_from_minibatch), or of every process's minibatch",
             [](const C& c, NegativesKind n) {
               return n != NegativesKind::kImage && c.loss == LossKind::kPUT
                          ? "image with --loss put (PUT prunes each image's own negatives)"
                          : std::string();
             })
          .unless_default(),
      option("--lambda", "lambda_nce", &C::lambda_nce,
             "contrastive weight (default: 1 with encoder features, 0.1 with vgg16)",
             [](const C&, double w) {
               return std::isfinite(w) ? std::string() : "a finite number (negative: the default)";
             })
          .default_in_help(false),
      option("--lambda-gan", "lambda_gan", &C::lambda_gan, "adversarial weight",
             [](const C&, double w) { return std::isfinite(w) && w >= 0 ? std::string() : "a finite number >= 0"; }),
      option("--nce-idt,!--no-nce-idt", "nce_idt", &C::nce_idt,
             "keep or drop the identity term L_c(Y, G(Y)) (default: kept)"),
      option("--flip-equivariance,!--no-flip-equivariance", "flip_equivariance", &C::flip_equivariance,
             "FastCUT's flip equivariance (default: off)")
          .unless_default(),
      option("--num-patches", "num_patches", &C::num_patches, "sampled locations per layer", at_least(2)),
      option("--ngf", "ngf", &C::ngf, "generator width", at_least(1)),
      option("--n-blocks", "n_blocks", &C::n_blocks, "generator residual blocks", at_least(1)),
      option("--ndf", "ndf", &C::ndf, "discriminator width", at_least(1)),
      option("--input-nc", "input_nc", &C::input_nc, "channels of domain A: 1 (grayscale) or 3 (RGB)", channels)
          .unless_default(),
      option("--output-nc", "output_nc", &C::output_nc, "channels of domain B and of the translation: 1 or 3", channels)
          .unless_default(),
  };
}

/// The optimisation.
inline std::vector<OptionSpec<TrainConfig>> optimisation_options() {
  using namespace config_rules;
  using C = TrainConfig;
  return {
      option("--batch-size", "batch_size", &C::batch_size, "images per domain per step", at_least(1)),
      option("--steps", "steps", &C::steps, "optimisation steps (0 writes the initial model)", at_least(0)),
      option("--decay-steps", "decay_steps", &C::decay_steps,
             "linear learning-rate decay over the last N steps (default: steps/2)",
             [](const C& c, int64_t) {
               return c.decay() > c.steps ? fmt::format("at most --steps ({})", c.steps) : std::string();
             })
          .default_in_help(false),
      option("--lr", "lr", &C::lr, "Adam learning rate",
             [](const C&, double lr) { return std::isfinite(lr) && lr > 0 ? std::string() : "a finite number > 0"; }),
      option("--beta1", "beta1", &C::beta1, "Adam's beta1", adam_beta),
      option("--beta2", "beta2", &C::beta2, "Adam's beta2", adam_beta),
      option("--seed", "seed", &C::seed, "seed of initialisation, sampling and augmentation"),
  };
}

inline const std::vector<OptionSpec<TrainConfig>>& config_options() {
  static const std::vector<OptionSpec<TrainConfig>> table = [] {
    std::vector<OptionSpec<TrainConfig>> all = data_options();
    for (auto part : {model_options(), optimisation_options()}) all.insert(all.end(), part.begin(), part.end());
    return all;
  }();
  return table;
}

}  // namespace trainer

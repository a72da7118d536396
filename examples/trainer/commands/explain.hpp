// `patchgcl-trainer explain`: the patch graph of a checkpoint over an image (report/explain.hpp).
// The checkpoint's generator translates, its contrastive feature extractor gives both pyramids
// and its GraphNCELoss heads (restored with everything else) build the graphs.
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/report/explain_report.hpp"
#include "trainer/train/checkpoint.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace trainer::explain {

/// The pictures of `image` (resized to `options.size`, or the checkpoint's training size).
inline GraphPictures explain_with(Trainer& trainer, const Image& original, const ExplainOptions& options,
                                  Image* used = nullptr) {
  auto& loss = graph_loss(trainer);
  const int side = options.size > 0 ? options.size : static_cast<int>(trainer.config().synthetic_size_or_crop());
  const Image image = fit(original, side);
  if (used) *used = image;
  return explain_image(
      loss, [&](const torch::Tensor& x) { return trainer.translate(x); },
      [&](const torch::Tensor& x) { return trainer.contrastive_features(x); }, image, options, trainer.device());
}

/// A whole trainer from `checkpoint` (a run folder or its ckpt.safetensors): G, D and the loss heads.
inline std::unique_ptr<Trainer> load_trainer(std::filesystem::path ckpt, torch::Device device,
                                             const std::string& vgg_weights) {
  ckpt = checkpoint::resolve(ckpt);
  const TrainConfig config = checkpoint::read_config(ckpt);
  if (!vgg_weights.empty() && config.features != FeatureKind::kVGG16)
    throw std::invalid_argument(
        fmt::format("--vgg-weights has no effect with a checkpoint trained with --features {} "
                    "(only VGG16 features load weights): leave it out",
                    to_string(config.features)));
  auto trainer = std::make_unique<Trainer>(config, device, vgg_weights);
  checkpoint::restore(*trainer, ckpt);
  return trainer;
}

/// `explain`: writes the pictures and index.html to `out`; returns the summary line.
inline std::string explain(const std::filesystem::path& ckpt, const std::filesystem::path& image_file,
                           const std::filesystem::path& out, const ExplainOptions& options, torch::Device device,
                           const std::string& vgg_weights = "") {
  std::string error;
  Image original = read_image(image_file, &error);
  if (original.empty())
    throw std::invalid_argument(
        fmt::format("--image: expected a readable image file, got '{}': {}", image_file.string(), error));
  auto trainer = load_trainer(ckpt, device, vgg_weights);
  Image used;
  auto pictures = explain_with(*trainer, original, options, &used);
  write_pictures(out, used, pictures,
                 fmt::format("patch graph of {} at step {}", image_file.filename().string(), trainer->step()));
  return pictures.summary;
}

}  // namespace trainer::explain

namespace trainer::commands {

struct ExplainCommandOptions {
  std::string checkpoint, image, out, vgg_weights;
  explain::ExplainOptions explain;
};

inline Command add_explain(CLI::App& app) {
  auto o = std::make_shared<ExplainCommandOptions>();
  auto* cmd = app.add_subcommand(
      "explain", "draw the patch graph of a --loss graph checkpoint over an image (docs/diagnostics.md, paper Fig. 9)");
  cmd->add_option("--checkpoint", o->checkpoint, "run folder or its ckpt.safetensors")->required();
  cmd->add_option("--image", o->image, "image file")->required();
  cmd->add_option("--out", o->out, "output folder: PNGs and index.html")->required();
  cmd->add_option("--layer", o->explain.layer, "contrastive feature layer (-1: the deepest)")->capture_default_str();
  cmd->add_option("--k", o->explain.k, "Laplacian eigenvectors drawn")->capture_default_str();
  cmd->add_option("--size", o->explain.size, "short side the image is resized to (0: the training size)")
      ->capture_default_str();
  cmd->add_option("--grid", o->explain.grid, "at most grid x grid nodes")->capture_default_str();
  cmd->add_option("--vgg-weights", o->vgg_weights,
                  "VGG16 weight file (python3 scripts/fetch-vgg16.py), for a --features vgg16 checkpoint");
  return {cmd, [o](const GlobalOptions& global) {
            const auto summary = explain::explain(o->checkpoint, o->image, o->out, o->explain,
                                                  parse_device(global.device), o->vgg_weights);
            fmt::print("{}\nwrote {}\n", summary, (std::filesystem::path(o->out) / "index.html").string());
            return 0;
          }};
}

}  // namespace trainer::commands

// The `explain` subcommand and the graph panel of a training run's samples (explain.hpp), for a
// Trainer: its generator translates, its contrastive feature extractor gives both pyramids and
// its GraphNCELoss heads (restored from the checkpoint with everything else) build the graphs.
#pragma once

#include "explain.hpp"
#include "checkpoint.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace trainer::explain {

/// The loss heads of a trainer of `--loss graph`; an error naming the loss otherwise.
inline patchgcl::GraphNCELossImpl& graph_loss(Trainer& trainer) {
  auto* loss = dynamic_cast<patchgcl::GraphNCELossImpl*>(trainer.F.module.get());
  if (!loss)
    throw std::invalid_argument(fmt::format("explain: expected a checkpoint trained with --loss graph (PatchGCL), got one "
                                            "trained with --loss {}, which builds no graph", to_string(trainer.config().loss)));
  return *loss;
}

/// The pictures of `image` (resized to `options.size`, or the checkpoint's training size).
inline GraphPictures explain_with(Trainer& trainer, const Image& original, const ExplainOptions& options, Image* used = nullptr) {
  auto& loss = graph_loss(trainer);
  const int side = options.size > 0 ? options.size : static_cast<int>(trainer.config().synthetic_size_or_crop());
  const Image image = fit(original, side);
  if (used) *used = image;
  return explain_image(
      loss, [&](const torch::Tensor& x) { return trainer.translate(x); },
      [&](const torch::Tensor& x) { return trainer.contrastive_features(x); }, image, options, trainer.device());
}

/// A whole trainer from `checkpoint` (a run folder or its ckpt.pt): G, D and the loss heads.
inline std::unique_ptr<Trainer> load_trainer(std::filesystem::path ckpt, torch::Device device,
                                             const std::string& vgg_weights) {
  if (std::filesystem::is_directory(ckpt)) ckpt /= "ckpt.pt";
  auto trainer = std::make_unique<Trainer>(checkpoint::read_config(ckpt), device, vgg_weights);
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
    throw std::invalid_argument(fmt::format("--image: expected a readable image file, got '{}': {}", image_file.string(), error));
  auto trainer = load_trainer(ckpt, device, vgg_weights);
  Image used;
  auto pictures = explain_with(*trainer, original, options, &used);
  write_pictures(out, used, pictures,
                 fmt::format("patch graph of {} at step {}", image_file.filename().string(), trainer->step()));
  return pictures.summary;
}

}  // namespace trainer::explain

// The trainer's subcommands as functions (main.cpp only parses the command line), so the tests
// drive exactly what a user runs: train (train_command.hpp), translate, evaluate and synth.
#pragma once

#include "checkpoint.hpp"
#include "evaluate.hpp"
#include "real_evaluation.hpp"
#include "train_command.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <iostream>

namespace trainer {

inline torch::Device parse_device(const std::string& name) {
  torch::Device device(name);  // throws c10::Error on a malformed name
  if (device.is_cuda() && !torch::cuda::is_available())
    throw std::runtime_error(
        fmt::format("--device {} requested but CUDA is not available in this LibTorch build/machine", name));
  return device;
}

/// Smallest side `translate` accepts: two stride-2 stages leave 2 pixels, the least a reflection pad of 1 needs.
inline constexpr int kSmallestTranslation = 8;

/// `translate`: an image or every image of a folder -> PNGs in `out_dir` (same stem).
/// `size` > 0 resizes the short side first; sides are rounded to multiples of 4 (the generator's stride).
/// Returns the number of images written; unreadable files, images too small for the generator
/// (a side under 8 pixels) or too large for the memory available are skipped with a warning each
/// and counted in `skipped` (main() then exits 1).
inline int translate(Trainer& trainer, const std::filesystem::path& input, const std::filesystem::path& out_dir,
                     int size, int* skipped = nullptr) {
  if (size != 0 && size < kSmallestTranslation)
    bad_option("--size", fmt::format("0 (keep the size) or at least {} (the generator downsamples twice and pads "
                                     "by reflection)", kSmallestTranslation), std::to_string(size));
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (fs::is_directory(input)) files = list_images(input);
  else if (fs::is_regular_file(input)) files = {input};
  else throw std::runtime_error(fmt::format("translate: input '{}' does not exist", input.string()));
  if (files.empty()) throw std::runtime_error(fmt::format("translate: no image files in '{}'", input.string()));
  fs::create_directories(out_dir);
  int written = 0, bad = 0;
  for (const auto& file : files) {
    Image img = read_image_or_skip(file, bad);
    if (img.empty()) continue;
    double scale = size > 0 ? static_cast<double>(size) / std::min(img.width, img.height) : 1.0;
    int w = std::max(4, static_cast<int>(std::lround(img.width * scale / 4.0)) * 4);
    int h = std::max(4, static_cast<int>(std::lround(img.height * scale / 4.0)) * 4);
    const double needed = estimate_translation_memory(trainer.config(), w, h), available = available_memory();
    std::string problem;
    if (std::min(w, h) < kSmallestTranslation)
      problem = fmt::format("{} x {} is smaller than the generator's {} x {} (use --size)", w, h, kSmallestTranslation,
                            kSmallestTranslation);
    else if (available >= 0 && needed > available)
      problem = fmt::format("translating it at {} x {} needs about {}, and {} are available (use --size)", w, h,
                            format_bytes(needed), format_bytes(available));
    if (!problem.empty()) {
      std::cerr << fmt::format("warning: skipping {}: {}\n", file.string(), problem);
      ++bad;
      continue;
    }
    img = resize(img, w, h);
    auto out = trainer.translate(to_tensor(img).unsqueeze(0));
    write_png(out_dir / (file.stem().string() + ".png"), from_tensor(out));
    ++written;
  }
  if (skipped) *skipped = bad;
  if (bad) std::cerr << fmt::format("warning: {} image(s) skipped\n", bad);
  return written;
}

/// `evaluate`: scores a checkpoint on the embedded dataset's test split.
inline evaluation::Scores evaluate(Trainer& trainer, int count) {
  if (count < 1) bad_option("--count", "at least 1", std::to_string(count));
  const auto& config = trainer.config();
  if (config.data.root != kSyntheticData)
    throw std::runtime_error(fmt::format(
        "evaluate scores models trained on the embedded dataset ('{}'); this checkpoint was trained on '{}'",
        kSyntheticData, config.data.root));
  return evaluation::evaluate([&](const torch::Tensor& x) { return trainer.translate(x); }, count,
                              config.data.synthetic_size, config.seed);
}

/// `evaluate --data DIR --features model.pt`: FID and KID of G(testA) vs testB (real_evaluation.hpp),
/// or of crops of a single-image pair (`single_image`, or a checkpoint trained with --single-image).
/// `crop_size` / `view_size` 0 take the checkpoint's crop size and twice it (its training view).
inline evaluation::RealScores evaluate_real(Trainer& trainer, const std::filesystem::path& data,
                                           const std::filesystem::path& features, evaluation::RealDataOptions options,
                                           bool single_image) {
  if (!std::filesystem::is_directory(data))
    throw std::invalid_argument(fmt::format("--data: expected a folder with testA/ and testB/ (or trainA/ and trainB/ "
                                            "for a single-image run), got '{}', which is not a folder", data.string()));
  metrics::FeatureNetwork net(features, trainer.device());
  const auto translate = [&](const torch::Tensor& x) { return trainer.translate(x); };
  if (!single_image && !trainer.config().data.single_image) return evaluation::evaluate_folders(translate, net, data, options);
  if (options.crop_size == 0) options.crop_size = static_cast<int>(trainer.config().data.crop_size);
  if (options.view_size == 0) options.view_size = 2 * options.crop_size;
  return evaluation::evaluate_single_image(translate, net, data, options);
}

/// `synth`: writes the embedded dataset to disk in the CycleGAN/CUT layout.
inline void write_synthetic(const std::filesystem::path& out, int count, int size, uint64_t seed) {
  namespace fs = std::filesystem;
  if (count < 1) bad_option("--count", "at least 1", std::to_string(count));
  const int64_t min_side = smallest_image_side();
  if (size < min_side || int64_t{size} * size > decode_limits().max_pixels)
    bad_option("--size", fmt::format("at least {} (the smallest image the trainer trains on) and at most {} pixels in "
                                     "all (--max-image-pixels)", min_side, decode_limits().max_pixels),
               std::to_string(size));
  for (const char* sub : {"trainA", "trainB", "testA", "testB"}) fs::create_directories(out / sub);
  for (int i = 0; i < count; ++i) {
    const std::string name = fmt::format("{:05}.png", i);
    write_png(out / "trainA" / name, synthetic::sample(synthetic::Split::kTrain, Domain::kA, i, size, seed));
    write_png(out / "trainB" / name, synthetic::sample(synthetic::Split::kTrain, Domain::kB, i, size, seed));
    write_png(out / "testA" / name, synthetic::sample(synthetic::Split::kTest, Domain::kA, i, size, seed));
    write_png(out / "testB" / name, synthetic::sample(synthetic::Split::kTest, Domain::kB, i, size, seed));
  }
}

}  // namespace trainer

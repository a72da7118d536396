// The trainer's subcommands as functions (main.cpp only parses the command line), so the tests
// drive exactly what a user runs: train (train_command.hpp), translate, evaluate and synth.
#pragma once

#include "checkpoint.hpp"
#include "evaluate.hpp"
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

/// `translate`: an image or every image of a folder -> PNGs in `out_dir` (same stem).
/// `size` > 0 resizes the short side first; sides are rounded to multiples of 4 (the generator's stride).
/// Returns the number of images written; unreadable files are skipped with a warning.
inline int translate(Trainer& trainer, const std::filesystem::path& input, const std::filesystem::path& out_dir,
                     int size, int* skipped = nullptr) {
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
    img = resize(img, w, h);
    auto out = trainer.translate(to_tensor(img).unsqueeze(0));
    write_png(out_dir / (file.stem().string() + ".png"), from_tensor(out));
    ++written;
  }
  if (skipped) *skipped = bad;
  if (bad) std::cerr << fmt::format("warning: {} unreadable image(s) skipped\n", bad);
  return written;
}

/// `evaluate`: scores a checkpoint on the embedded dataset's test split.
inline evaluation::Scores evaluate(Trainer& trainer, int count) {
  const auto& config = trainer.config();
  if (config.data.root != kSyntheticData)
    throw std::runtime_error(fmt::format(
        "evaluate scores models trained on the embedded dataset ('{}'); this checkpoint was trained on '{}'",
        kSyntheticData, config.data.root));
  return evaluation::evaluate([&](const torch::Tensor& x) { return trainer.translate(x); }, count,
                              config.data.synthetic_size, config.seed);
}

/// `synth`: writes the embedded dataset to disk in the CycleGAN/CUT layout.
inline void write_synthetic(const std::filesystem::path& out, int count, int size, uint64_t seed) {
  namespace fs = std::filesystem;
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

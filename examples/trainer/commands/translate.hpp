// `patchgcl-trainer translate`: an image or a folder of images through a trained generator.
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/train/checkpoint.hpp"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

namespace trainer {

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

namespace commands {

struct TranslateOptions {
  std::string checkpoint, input, output;
  int size = 0;
};

inline Command add_translate(CLI::App& app) {
  auto o = std::make_shared<TranslateOptions>();
  auto* cmd = app.add_subcommand("translate", "translate an image or a folder of images");
  cmd->add_option("--checkpoint", o->checkpoint, "ckpt.pt of a run")->required();
  cmd->add_option("--input", o->input, "image file or folder")->required();
  cmd->add_option("--output", o->output, "output folder")->required();
  cmd->add_option("--size", o->size, "resize the short side to this first (0: keep)");
  return {cmd, [o](const GlobalOptions& global) {
            auto model = checkpoint::load_model(checkpoint::resolve(o->checkpoint), parse_device(global.device));
            int skipped = 0;
            const int n = translate(*model, o->input, o->output, o->size, &skipped);
            fmt::print("translated {} image(s) into {}\n", n, o->output);
            if (skipped == 0) return 0;
            fmt::print(stderr, "error: {} of {} image(s) could not be translated (warnings above)\n", skipped, n + skipped);
            return 1;
          }};
}

}  // namespace commands
}  // namespace trainer

// `patchgcl-trainer translate`: an image or a folder of images through a trained generator, each at
// its own size and aspect ratio, whole or in overlapping tiles (nets/tiling.hpp).
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/data/image_tensor.hpp"
#include "trainer/nets/tiling.hpp"
#include "trainer/train/checkpoint.hpp"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

namespace trainer {

/// Smallest side `translate` accepts: two stride-2 stages leave 2 pixels, the least a reflection pad of 1 needs.
inline constexpr int kSmallestTranslation = 8;

/// The tile a translation of a `width` x `height` image uses: `requested` when given (tile > 0),
/// else the whole image when it fits in `available` bytes (< 0: unknown), else the largest tile
/// of 1024, 512, ... 64 pixels that does (overlap: an eighth of it). tile 0 with `fits` false:
/// not even a 64-pixel tile fits.
inline TileOptions choose_tiles(const TrainConfig& c, int64_t width, int64_t height, TileOptions requested,
                                double available, bool& fits) {
  fits = true;
  const auto fits_in = [&](int64_t w, int64_t h) {
    return available < 0 || estimate_translation_memory(c, w, h) <= available;
  };
  if (requested.tile > 0) {
    fits = fits_in(std::min(requested.tile, width), std::min(requested.tile, height));
    return requested;
  }
  if (fits_in(width, height)) return requested;
  for (int64_t tile = 1024; tile >= 64; tile /= 2)
    if (fits_in(std::min(tile, width), std::min(tile, height))) return {tile, tile / 8, requested.multiple};
  fits = false;
  return requested;
}

/// `translate`: an image or every image of a folder -> PNGs in `out_dir` (same stem), each at its own
/// size (`size` > 0 first resizes the short side to it, keeping the aspect ratio). `tiles.tile` > 0
/// translates in overlapping tiles of that side; 0 translates whole images, and in tiles those whose
/// whole translation would not fit in the memory available (with a note). Returns the number of
/// images written; unreadable files, images too small for the generator (a side under 8 pixels) or
/// too large even in tiles are skipped with a warning each and counted in `skipped` (main() then exits 1).
inline int translate(Trainer& trainer, const std::filesystem::path& input, const std::filesystem::path& out_dir,
                     int size, int* skipped = nullptr, TileOptions tiles = {}) {
  if (size != 0 && size < kSmallestTranslation)
    bad_option("--size",
               fmt::format("0 (keep the size) or at least {} (the generator downsamples twice and pads "
                           "by reflection)",
                           kSmallestTranslation),
               std::to_string(size));
  check_tile_options(tiles);
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (fs::is_directory(input)) files = list_images(input);
  else if (fs::is_regular_file(input)) files = {input};
  else throw std::runtime_error(fmt::format("translate: input '{}' does not exist", input.string()));
  if (files.empty()) throw std::runtime_error(fmt::format("translate: no image files in '{}'", input.string()));
  fs::create_directories(out_dir);
  const auto net = [&](const torch::Tensor& x) { return trainer.translate(x); };
  int written = 0, bad = 0;
  for (const auto& file : files) {
    Image img = read_image_or_skip(file, bad);
    if (img.empty()) continue;
    const double scale = size > 0 ? static_cast<double>(size) / std::min(img.width, img.height) : 1.0;
    const int w = std::max(1, static_cast<int>(std::lround(img.width * scale)));
    const int h = std::max(1, static_cast<int>(std::lround(img.height * scale)));
    const double available = available_memory();
    bool fits = true;
    const TileOptions used = choose_tiles(trainer.config(), w, h, tiles, available, fits);
    std::string problem;
    if (std::min(w, h) < kSmallestTranslation)
      problem = fmt::format("{} x {} is smaller than the generator's {} x {} (use --size)", w, h, kSmallestTranslation,
                            kSmallestTranslation);
    else if (!fits)
      problem = fmt::format("translating it at {} x {}{} needs about {}, and {} are available (use a smaller --tile)",
                            w, h, used.tile ? fmt::format(" in {} x {} tiles", used.tile, used.tile) : "",
                            format_bytes(estimate_translation_memory(trainer.config(), used.tile ? used.tile : w,
                                                                     used.tile ? used.tile : h)),
                            format_bytes(available));
    if (!problem.empty()) {
      std::cerr << fmt::format("warning: skipping {}: {}\n", file.string(), problem);
      ++bad;
      continue;
    }
    if (used.tile != tiles.tile)
      std::cerr << fmt::format(
          "note: {} at {} x {} would need about {} whole, and {} are available: translating it in "
          "{} x {} tiles overlapping by {} pixels\n",
          file.string(), w, h, format_bytes(estimate_translation_memory(trainer.config(), w, h)),
          format_bytes(available), used.tile, used.tile, used.overlap);
    if (w != img.width || h != img.height) img = resize(img, w, h);
    write_png(out_dir / (file.stem().string() + ".png"), translate_image(img, net, used));
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
  TileOptions tiles;
};

inline Command add_translate(CLI::App& app) {
  auto o = std::make_shared<TranslateOptions>();
  auto* cmd = app.add_subcommand("translate", "translate an image or a folder of images, each at its own size");
  cmd->add_option("--checkpoint", o->checkpoint, "ckpt.safetensors of a run")->required();
  cmd->add_option("--input", o->input, "image file or folder")->required();
  cmd->add_option("--output", o->output, "output folder")->required();
  cmd->add_option("--size", o->size, "resize the short side to this first, keeping the aspect ratio (0: keep)");
  cmd->add_option("--tile", o->tiles.tile,
                  "translate in overlapping tiles of N x N pixels (memory bounded by the tile; 0: whole images, "
                  "tiled only when they do not fit in memory)");
  cmd->add_option("--tile-overlap", o->tiles.overlap, "pixels shared by neighbouring tiles (default: --tile / 8)");
  return {cmd, [o, cmd](const GlobalOptions& global) {
            if (cmd->count("--tile-overlap") && o->tiles.tile == 0)
              throw std::invalid_argument(
                  "--tile-overlap has no effect without --tile (whole images have no overlap): "
                  "add --tile N");
            if (o->tiles.tile > 0 && !cmd->count("--tile-overlap")) o->tiles.overlap = o->tiles.tile / 32 * 4;
            check_tile_options(o->tiles);
            auto model = checkpoint::load_model(checkpoint::resolve(o->checkpoint), parse_device(global.device));
            int skipped = 0;
            const int n = translate(*model, o->input, o->output, o->size, &skipped, o->tiles);
            fmt::print("translated {} image(s) into {}\n", n, o->output);
            if (skipped == 0) return 0;
            fmt::print(stderr, "error: {} of {} image(s) could not be translated (warnings above)\n", skipped,
                       n + skipped);
            return 1;
          }};
}

}  // namespace commands
}  // namespace trainer

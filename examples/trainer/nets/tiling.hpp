// A fully convolutional image-to-image network over an image of any size and aspect ratio: the
// image is reflection-padded on the right and bottom to a multiple of the network's downsampling
// factor, translated whole or in overlapping tiles, and cropped back to its own size. Tiles are
// blended with linear ramps over their overlap, so that no seam shows, and the network's memory is
// that of one tile; the image itself costs 3 bytes a pixel in, 3 out and 4 per output channel
// for the blended sum.
#pragma once

#include "trainer/data/image_io.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

struct TileOptions {
  int64_t tile = 0;      ///< side of a square tile; 0: the whole image in one piece
  int64_t overlap = 0;   ///< pixels neighbouring tiles share, blended with linear ramps
  int64_t multiple = 4;  ///< the network's downsampling factor: padded sides and tile origins are multiples of it
};

/// Refuses tile options a translation cannot use, naming the option (--tile, --tile-overlap).
inline void check_tile_options(const TileOptions& o) {
  const auto bad = [](const char* option, const std::string& expected, int64_t got) {
    throw std::invalid_argument(fmt::format("{} must be {} (got {})", option, expected, got));
  };
  if (o.tile != 0 && (o.tile < 4 * o.multiple || o.tile % o.multiple != 0))
    bad("--tile", fmt::format("0 (the whole image) or a multiple of {} of at least {}", o.multiple, 4 * o.multiple),
        o.tile);
  if (o.overlap < 0 || o.overlap % o.multiple != 0 || (o.tile != 0 && 2 * o.overlap >= o.tile))
    bad("--tile-overlap", fmt::format("a multiple of {} in [0, --tile / 2)", o.multiple), o.overlap);
}

/// Origins of the tiles of side `tile` along a side of `length` (both multiples of the downsampling
/// factor, as is `overlap`): 0, tile - overlap, 2 (tile - overlap), ..., and the last one ending at
/// `length`, so that neighbours share at least `overlap` pixels and every origin stays on the grid.
inline std::vector<int64_t> tile_origins(int64_t length, int64_t tile, int64_t overlap) {
  if (tile >= length) return {0};
  std::vector<int64_t> origins;
  for (int64_t x = 0; x + tile < length; x += tile - overlap) origins.push_back(x);
  origins.push_back(length - tile);
  return origins;
}

/// Blending weight along one side of a tile at `origin` (side `tile`, image side `length`): a
/// linear ramp (i + 1/2) / overlap up from each side that has a neighbour, 1 elsewhere. Where two
/// tiles overlap by exactly `overlap`, their ramps sum to 1.
inline torch::Tensor tile_ramp(int64_t origin, int64_t tile, int64_t length, int64_t overlap) {
  auto w = torch::ones({tile}, torch::kFloat32);
  if (overlap == 0) return w;
  const auto up = (torch::arange(overlap, torch::kFloat32) + 0.5) / static_cast<double>(overlap);
  if (origin > 0) w.slice(0, 0, overlap).mul_(up);
  if (origin + tile < length) w.slice(0, tile - overlap, tile).mul_(up.flip({0}));
  return w;
}

/// `image` through `net` (`[1,3,h,w]` in [-1, 1] -> `[1,C,h,w]`, C = 1 or 3, h and w multiples of
/// options.multiple) at the image's own size, whole or in tiles (options). A one-channel result is
/// written as gray RGB.
inline Image translate_image(const Image& image, const std::function<torch::Tensor(const torch::Tensor&)>& net,
                             const TileOptions& options) {
  check_tile_options(options);
  const int64_t H = image.height, W = image.width, m = options.multiple;
  const int64_t Hp = (H + m - 1) / m * m, Wp = (W + m - 1) / m * m;
  const int64_t th = options.tile ? std::min(options.tile, Hp) : Hp,
                tw = options.tile ? std::min(options.tile, Wp) : Wp;
  const auto ys = tile_origins(Hp, th, options.overlap), xs = tile_origins(Wp, tw, options.overlap);
  const auto bytes = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {H, W, 3}, torch::kUInt8);
  // Tile (y, x) of the padded image: the pixels inside the image, reflected past its right and bottom.
  const auto input_tile = [&](int64_t y, int64_t x) {
    const int64_t y1 = std::min(y + th, H), x1 = std::min(x + tw, W);
    auto t =
        bytes.slice(0, y, y1).slice(1, x, x1).permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).unsqueeze(0);
    if (y + th > y1 || x + tw > x1)
      t = torch::nn::functional::pad(
          t, torch::nn::functional::PadFuncOptions({0, x + tw - x1, 0, y + th - y1}).mode(torch::kReflect));
    return t.contiguous();
  };
  // The weights are a product of per-side ramps over a grid of tiles, so their sum is too.
  auto sum_y = torch::zeros({Hp}, torch::kFloat32), sum_x = torch::zeros({Wp}, torch::kFloat32);
  for (int64_t y : ys) sum_y.slice(0, y, y + th).add_(tile_ramp(y, th, Hp, options.overlap));
  for (int64_t x : xs) sum_x.slice(0, x, x + tw).add_(tile_ramp(x, tw, Wp, options.overlap));
  torch::Tensor sum;  // [C, Hp, Wp]: the weighted outputs
  for (int64_t y : ys)
    for (int64_t x : xs) {
      auto out = net(input_tile(y, x)).to(torch::kCPU, torch::kFloat32);
      if (out.dim() != 4 || out.size(0) != 1 || (out.size(1) != 1 && out.size(1) != 3) || out.size(2) != th ||
          out.size(3) != tw)
        throw std::runtime_error(fmt::format("translate: the network returned {} for a [1, 3, {}, {}] tile",
                                             fmt::join(out.sizes().begin(), out.sizes().end(), " x "), th, tw));
      if (!sum.defined()) sum = torch::zeros({out.size(1), Hp, Wp}, torch::kFloat32);
      const auto weight =
          tile_ramp(y, th, Hp, options.overlap).view({th, 1}) * tile_ramp(x, tw, Wp, options.overlap).view({1, tw});
      sum.slice(1, y, y + th).slice(2, x, x + tw).add_(out[0] * weight);
    }
  // Normalised, cropped and quantised a band of rows at a time (no second image-sized float tensor).
  Image result{static_cast<int>(W), static_cast<int>(H), std::vector<uint8_t>(static_cast<size_t>(W * H * 3))};
  auto pixels = torch::from_blob(result.pixels.data(), {H, W, 3}, torch::kUInt8);
  for (int64_t y = 0; y < H; y += 256) {
    const int64_t y1 = std::min(y + 256, H);
    auto band =
        sum.slice(1, y, y1).slice(2, 0, W) / (sum_y.slice(0, y, y1).view({-1, 1}) * sum_x.slice(0, 0, W).view({1, -1}));
    if (band.size(0) == 1) band = band.expand({3, -1, -1});
    pixels.slice(0, y, y1).copy_(
        band.clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch::kUInt8).permute({1, 2, 0}));
  }
  return result;
}

}  // namespace trainer

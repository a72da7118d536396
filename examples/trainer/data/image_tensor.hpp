// Images <-> the float tensors the networks see: `[3,H,W]` in [-1, 1], the generator's range.
#pragma once

#include "trainer/data/image_io.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

namespace trainer {

/// `[3,H,W]` float in [-1, 1].
inline torch::Tensor to_tensor(const Image& image) {
  auto bytes =
      torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width, 3}, torch::kUInt8);
  return bytes.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
}

/// `images` (`[C,H,W]` or `[B,C,H,W]`, C = 1 or 3) with `channels` (1 or 3) channels: RGB -> gray is
/// ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B (what CUT's grayscale loading, PIL's convert('L'),
/// computes), gray -> RGB repeats the channel; the same count returns `images`. A grayscale file,
/// decoded as three equal channels, comes back as its own single channel.
inline torch::Tensor to_channels(const torch::Tensor& images, int64_t channels) {
  if (images.dim() != 3 && images.dim() != 4)
    throw std::invalid_argument(fmt::format("to_channels: expected [C,H,W] or [B,C,H,W], got {} dims", images.dim()));
  const int64_t have = images.size(-3);
  if ((have != 1 && have != 3) || (channels != 1 && channels != 3))
    throw std::invalid_argument(
        fmt::format("to_channels: converts between 1 (grayscale) and 3 (RGB) channels, got {} -> {}", have, channels));
  if (have == channels) return images;
  if (channels == 3) return images.repeat_interleave(3, -3);
  const auto weights = torch::tensor({0.299f, 0.587f, 0.114f}, images.options()).view({3, 1, 1});
  return (images * weights).sum(-3, /*keepdim=*/true);
}

/// Inverse of to_tensor; accepts `[C,H,W]` or `[1,C,H,W]` (C = 3, or 1: written as gray RGB) on any
/// device, clamps to [-1, 1].
inline Image from_tensor(const torch::Tensor& tensor) {
  auto t = tensor.detach();
  if (t.dim() == 4) t = t[0];
  if (t.dim() == 3 && t.size(0) == 1) t = to_channels(t, 3);
  if (t.dim() != 3 || t.size(0) != 3)
    throw std::invalid_argument(fmt::format("from_tensor: expected [3,H,W] or [1,H,W], got {} dims", t.dim()));
  t = t.to(torch::kCPU, torch::kFloat32)
          .clamp(-1.0, 1.0)
          .add(1.0)
          .mul(127.5)
          .round()
          .to(torch::kUInt8)
          .permute({1, 2, 0})
          .contiguous();
  Image image;
  image.height = static_cast<int>(t.size(0));
  image.width = static_cast<int>(t.size(1));
  image.pixels.assign(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  return image;
}

}  // namespace trainer

// Images <-> the float tensors the networks see: `[3,H,W]` in [-1, 1], the generator's range.
#pragma once

#include "trainer/data/image_io.hpp"

#include <torch/torch.h>

namespace trainer {

/// `[3,H,W]` float in [-1, 1].
inline torch::Tensor to_tensor(const Image& image) {
  auto bytes = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                {image.height, image.width, 3}, torch::kUInt8);
  return bytes.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
}

/// Inverse of to_tensor; accepts `[3,H,W]` or `[1,3,H,W]` on any device, clamps to [-1, 1].
inline Image from_tensor(const torch::Tensor& tensor) {
  auto t = tensor.detach();
  if (t.dim() == 4) t = t[0];
  if (t.dim() != 3 || t.size(0) != 3)
    throw std::invalid_argument(fmt::format("from_tensor: expected [3,H,W], got {} dims", t.dim()));
  t = t.to(torch::kCPU, torch::kFloat32).clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
       .to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Image image;
  image.height = static_cast<int>(t.size(0));
  image.width = static_cast<int>(t.size(1));
  image.pixels.assign(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  return image;
}

}  // namespace trainer

// The standard FID network, defined natively: TensorFlow's FID Inception-v3 up to pool3 (the blocks of
// nets/inception_layout.hpp), with its weights from a safetensors file (nets/inception_weights.hpp) that
// scripts/export-inception.py writes once from the checksum-pinned TensorFlow weights:
//
//   python3 scripts/export-inception.py     # prints ~/.cache/patchgcl/fid-helper/inception_fid.safetensors
//   patchgcl-trainer evaluate --run runs/x --features "$(python3 scripts/export-inception.py)"
//
// features() maps images [B, 3, H, W] RGB in [0, 1], any H and W, to [B, 2048] as TTUR's FID does:
//   1. quantised to 8 bits, round(255 x), as an image saved to PNG (a translation is scored as its file);
//   2. resized to 299 x 299 in [0, 255] as TensorFlow 1's resize_bilinear (TTUR's graph): output pixel i
//      samples the input at i * in / 299 (no half-pixel offset), clamped at the border;
//   3. scaled by (v - 128) / 128 (range [-1, 0.9921875]);
//   4. pool3() of the network.
#pragma once

#include "trainer/nets/inception_layout.hpp"
#include "trainer/nets/inception_weights.hpp"

#include <torch/torch.h>

#include <fmt/format.h>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace trainer {

/// The side of the network's input images.
inline constexpr int64_t kInceptionSide = 299;

/// TensorFlow 1's resize_bilinear (align_corners=False, half_pixel_centers=False) of `x` along `dim`
/// to `side` samples: output i samples the input at i * n / side, between pixels floor and floor + 1
/// (clamped to the last), weighted by the fraction.
inline torch::Tensor tf1_resize_axis(const torch::Tensor& x, int64_t dim, int64_t side) {
  const int64_t n = x.size(dim);
  const auto src = torch::arange(side, torch::kFloat64) * (static_cast<double>(n) / static_cast<double>(side));
  auto lo = torch::floor(src).clamp(0, n - 1);
  auto w = (src - lo).to(torch::kFloat32).to(x.device());
  lo = lo.to(torch::kInt64);
  const auto hi = (lo + 1).clamp_max(n - 1).to(x.device());
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[static_cast<size_t>(dim)] = side;
  w = w.view(shape);
  return x.index_select(dim, lo.to(x.device())) * (1.0 - w) + x.index_select(dim, hi) * w;
}

/// Steps 1 to 3 of the file comment: images [B, 3, H, W] in [0, 1] to the network's input [B, 3, 299, 299].
inline torch::Tensor inception_input(const torch::Tensor& images) {
  auto x = torch::round(images.to(torch::kFloat32).clamp(0.0, 1.0) * 255.0);
  x = tf1_resize_axis(tf1_resize_axis(x, 2, kInceptionSide), 3, kInceptionSide);
  return (x - 128.0) / 128.0;
}

class FIDInception {
 public:
  /// The network with `weights` (parse_inception_weights's, all 94 convolutions) on `device`.
  FIDInception(const std::map<std::string, torch::Tensor>& weights, torch::Device device) {
    for (const auto& c : inception_convs()) {
      convs_.emplace(c.name, &c);
      for (const auto& part : inception_conv_parts()) {
        const auto key = c.name + "." + part;
        const auto it = weights.find(key);
        if (it == weights.end()) throw std::invalid_argument("FIDInception: the weights lack '" + key + "'");
        weights_.emplace(key, it->second.to(device, torch::kFloat32));
      }
    }
  }

  /// The network of the Inception weight file at `path` (read_inception_weights: every tensor checked).
  static FIDInception load(const std::string& path, torch::Device device) {
    return FIDInception(read_inception_weights(path), device);
  }

  /// Features [B, 2048] of images [B, 3, H, W] RGB in [0, 1], any H and W (steps 1 to 4 of the file comment).
  torch::Tensor features(const torch::Tensor& images) {
    if (images.dim() != 4 || images.size(1) != 3)
      throw std::invalid_argument(fmt::format("FIDInception: expected images [B, 3, H, W] RGB in [0, 1], got shape {}",
                                              c10::str(images.sizes())));
    return pool3(inception_input(images));
  }

  /// pool3 [B, 2048] of the network's input [B, 3, 299, 299] in [-1, 1].
  torch::Tensor pool3(const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    auto h = conv(conv(conv(x, "Conv2d_1a_3x3"), "Conv2d_2a_3x3"), "Conv2d_2b_3x3");
    h = torch::max_pool2d(h, 3, 2);
    h = torch::max_pool2d(conv(conv(h, "Conv2d_3b_1x1"), "Conv2d_4a_3x3"), 3, 2);
    for (const char* block : {"Mixed_5b", "Mixed_5c", "Mixed_5d"}) h = inception_a(h, block);
    h = inception_b(h);
    for (const char* block : {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}) h = inception_c(h, block);
    h = inception_d(h);
    h = inception_e(h, "Mixed_7b", false);
    h = inception_e(h, "Mixed_7c", true);
    return torch::avg_pool2d(h, 8, 8).reshape({-1, 2048});
  }

 private:
  /// BasicConv2d `name`: convolution without bias, batch normalisation without scale (eps 0.001), ReLU.
  torch::Tensor conv(const torch::Tensor& x, const std::string& name) const {
    const InceptionConv& c = *convs_.at(name);
    const auto& w = [&](const char* part) -> const torch::Tensor& { return weights_.at(name + "." + part); };
    auto y = torch::conv2d(x, w("conv.weight"), {}, {c.stride, c.stride}, {c.ph, c.pw});
    y = torch::batch_norm(y, {}, w("bn.bias"), w("bn.running_mean"), w("bn.running_var"), false, 0.1, 0.001, true);
    return torch::relu(y);
  }
  torch::Tensor chain(torch::Tensor x, const std::string& block, std::initializer_list<const char*> names) const {
    for (const char* n : names) x = conv(x, block + "." + n);
    return x;
  }
  /// The pool branches' 3 x 3 average pool over the pixels inside the image (TensorFlow's SAME padding).
  static torch::Tensor average_pool(const torch::Tensor& x) { return torch::avg_pool2d(x, 3, 1, 1, false, false); }

  torch::Tensor inception_a(const torch::Tensor& x, const std::string& b) const {
    return torch::cat({chain(x, b, {"branch1x1"}), chain(x, b, {"branch5x5_1", "branch5x5_2"}),
                       chain(x, b, {"branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"}),
                       conv(average_pool(x), b + ".branch_pool")},
                      1);
  }
  torch::Tensor inception_b(const torch::Tensor& x) const {
    const std::string b = "Mixed_6a";
    return torch::cat({chain(x, b, {"branch3x3"}), chain(x, b, {"branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"}),
                       torch::max_pool2d(x, 3, 2)},
                      1);
  }
  torch::Tensor inception_c(const torch::Tensor& x, const std::string& b) const {
    return torch::cat(
        {chain(x, b, {"branch1x1"}), chain(x, b, {"branch7x7_1", "branch7x7_2", "branch7x7_3"}),
         chain(x, b, {"branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"}),
         conv(average_pool(x), b + ".branch_pool")},
        1);
  }
  torch::Tensor inception_d(const torch::Tensor& x) const {
    const std::string b = "Mixed_7a";
    return torch::cat(
        {chain(x, b, {"branch3x3_1", "branch3x3_2"}),
         chain(x, b, {"branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"}), torch::max_pool2d(x, 3, 2)},
        1);
  }
  /// InceptionE; `max_pool`: Mixed_7c's pool branch (FIDInceptionE_2) takes a 3 x 3 max pool, Mixed_7b's the average.
  torch::Tensor inception_e(const torch::Tensor& x, const std::string& b, bool max_pool) const {
    const auto a = conv(x, b + ".branch3x3_1");
    const auto d = chain(x, b, {"branch3x3dbl_1", "branch3x3dbl_2"});
    const auto pooled = max_pool ? torch::max_pool2d(x, 3, 1, 1) : average_pool(x);
    return torch::cat(
        {conv(x, b + ".branch1x1"), conv(a, b + ".branch3x3_2a"), conv(a, b + ".branch3x3_2b"),
         conv(d, b + ".branch3x3dbl_3a"), conv(d, b + ".branch3x3dbl_3b"), conv(pooled, b + ".branch_pool")},
        1);
  }

  std::map<std::string, const InceptionConv*> convs_;
  std::map<std::string, torch::Tensor> weights_;
};

}  // namespace trainer

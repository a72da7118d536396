// The layout of the standard FID network: TensorFlow's Inception-v3 (inception-2015-12-05, the network
// of TTUR, pytorch-fid, clean-fid and StyleGAN's metrics) up to pool3, as pytorch-fid's FIDInceptionV3
// names it. Each of its 94 convolutions is a BasicConv2d: a convolution without bias, then TensorFlow's
// batch normalisation without scale (y = (x - running_mean) / sqrt(running_var + 0.001) + bias), then
// ReLU. The blocks (torchvision's Inception3 with pytorch-fid's FID variants):
//
//   Conv2d_1a_3x3 .. Conv2d_4a_3x3, two 3x3 stride-2 max pools   (stem, [B, 3, 299, 299] -> [B, 192, 35, 35])
//   Mixed_5b, 5c, 5d   InceptionA (FIDInceptionA: its pool branch averages without the padding)
//   Mixed_6a           InceptionB
//   Mixed_6b .. 6e     InceptionC (FIDInceptionC: the same average pool)
//   Mixed_7a           InceptionD
//   Mixed_7b           InceptionE (FIDInceptionE_1: the same average pool)
//   Mixed_7c           InceptionE (FIDInceptionE_2: a 3x3 stride-1 max pool in the pool branch)
//   8x8 average pool -> [B, 2048] (pool3)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trainer {

/// One BasicConv2d of the FID Inception: its name (`Mixed_5b.branch1x1`), channels, kernel, stride, padding.
struct InceptionConv {
  std::string name;
  int64_t out, in, kh, kw, stride, ph, pw;
};

/// The tensors of one BasicConv2d in a weight file, after its name: `conv.weight` [out, in, kh, kw],
/// `bn.bias`, `bn.running_mean`, `bn.running_var` [out].
inline const std::vector<std::string>& inception_conv_parts() {
  static const std::vector<std::string> parts = {"conv.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
  return parts;
}

namespace detail {

struct InceptionLayoutBuilder {
  std::vector<InceptionConv> convs;
  std::string block;

  /// A square k x k convolution with "same" padding (k / 2) unless `pad` is given.
  void square(const std::string& n, int64_t out, int64_t in, int64_t k, int64_t stride = 1, int64_t pad = -1) {
    const int64_t p = pad < 0 ? k / 2 : pad;
    convs.push_back({block + n, out, in, k, k, stride, p, p});
  }
  /// A 1 x k (`wide`) or k x 1 convolution with "same" padding.
  void line(const std::string& n, int64_t out, int64_t in, int64_t k, bool wide) {
    convs.push_back({block + n, out, in, wide ? 1 : k, wide ? k : 1, 1, wide ? 0 : k / 2, wide ? k / 2 : 0});
  }

  void inception_a(const std::string& name, int64_t in, int64_t pool_features) {
    block = name + ".";
    square("branch1x1", 64, in, 1);
    square("branch5x5_1", 48, in, 1);
    square("branch5x5_2", 64, 48, 5);
    square("branch3x3dbl_1", 64, in, 1);
    square("branch3x3dbl_2", 96, 64, 3);
    square("branch3x3dbl_3", 96, 96, 3);
    square("branch_pool", pool_features, in, 1);
  }
  void inception_b(int64_t in) {
    block = "Mixed_6a.";
    square("branch3x3", 384, in, 3, 2, 0);
    square("branch3x3dbl_1", 64, in, 1);
    square("branch3x3dbl_2", 96, 64, 3);
    square("branch3x3dbl_3", 96, 96, 3, 2, 0);
  }
  void inception_c(const std::string& name, int64_t c7) {
    block = name + ".";
    square("branch1x1", 192, 768, 1);
    square("branch7x7_1", c7, 768, 1);
    line("branch7x7_2", c7, c7, 7, true);
    line("branch7x7_3", 192, c7, 7, false);
    square("branch7x7dbl_1", c7, 768, 1);
    line("branch7x7dbl_2", c7, c7, 7, false);
    line("branch7x7dbl_3", c7, c7, 7, true);
    line("branch7x7dbl_4", c7, c7, 7, false);
    line("branch7x7dbl_5", 192, c7, 7, true);
    square("branch_pool", 192, 768, 1);
  }
  void inception_d(int64_t in) {
    block = "Mixed_7a.";
    square("branch3x3_1", 192, in, 1);
    square("branch3x3_2", 320, 192, 3, 2, 0);
    square("branch7x7x3_1", 192, in, 1);
    line("branch7x7x3_2", 192, 192, 7, true);
    line("branch7x7x3_3", 192, 192, 7, false);
    square("branch7x7x3_4", 192, 192, 3, 2, 0);
  }
  void inception_e(const std::string& name, int64_t in) {
    block = name + ".";
    square("branch1x1", 320, in, 1);
    square("branch3x3_1", 384, in, 1);
    line("branch3x3_2a", 384, 384, 3, true);
    line("branch3x3_2b", 384, 384, 3, false);
    square("branch3x3dbl_1", 448, in, 1);
    square("branch3x3dbl_2", 384, 448, 3);
    line("branch3x3dbl_3a", 384, 384, 3, true);
    line("branch3x3dbl_3b", 384, 384, 3, false);
    square("branch_pool", 192, in, 1);
  }
};

}  // namespace detail

/// The 94 convolutions of the FID Inception, in the order the network applies them.
inline const std::vector<InceptionConv>& inception_convs() {
  static const std::vector<InceptionConv> convs = [] {
    detail::InceptionLayoutBuilder b;
    b.square("Conv2d_1a_3x3", 32, 3, 3, 2, 0);
    b.square("Conv2d_2a_3x3", 32, 32, 3, 1, 0);
    b.square("Conv2d_2b_3x3", 64, 32, 3);
    b.square("Conv2d_3b_1x1", 80, 64, 1);
    b.square("Conv2d_4a_3x3", 192, 80, 3, 1, 0);
    b.inception_a("Mixed_5b", 192, 32);
    b.inception_a("Mixed_5c", 256, 64);
    b.inception_a("Mixed_5d", 288, 64);
    b.inception_b(288);
    b.inception_c("Mixed_6b", 128);
    b.inception_c("Mixed_6c", 160);
    b.inception_c("Mixed_6d", 160);
    b.inception_c("Mixed_6e", 192);
    b.inception_d(768);
    b.inception_e("Mixed_7b", 1280);
    b.inception_e("Mixed_7c", 2048);
    return b.convs;
  }();
  return convs;
}

}  // namespace trainer

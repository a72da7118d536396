// 70x70 PatchGAN discriminator (pix2pix/CycleGAN/CUT's NLayerDiscriminator, n_layers = 3,
// with CUT's anti-aliased stride: stride-1 conv followed by Downsample).
#pragma once

#include "trainer/nets/antialias.hpp"

namespace trainer {

struct DiscriminatorOptions {
  TORCH_ARG(int64_t, input_nc) = 3;
  TORCH_ARG(int64_t, ndf) = 64;
  TORCH_ARG(int64_t, n_layers) = 3;
};

class PatchDiscriminatorImpl : public torch::nn::Cloneable<PatchDiscriminatorImpl> {
 public:
  explicit PatchDiscriminatorImpl(DiscriminatorOptions options = {}) : options(options) { reset(); }

  void reset() override {
    namespace nn = torch::nn;
    auto lrelu = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); };
    auto conv = [](int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 4).padding(1)); };
    const int64_t ndf = options.ndf();
    model = nn::Sequential();
    model->push_back(conv(options.input_nc(), ndf));
    model->push_back(lrelu());
    model->push_back(Downsample(ndf));
    int64_t mult = 1;
    for (int64_t n = 1; n < options.n_layers(); ++n) {
      int64_t prev = mult;
      mult = std::min<int64_t>(1 << n, 8);
      model->push_back(conv(ndf * prev, ndf * mult));
      model->push_back(nn::InstanceNorm2d(ndf * mult));
      model->push_back(lrelu());
      model->push_back(Downsample(ndf * mult));
    }
    int64_t prev = mult;
    mult = std::min<int64_t>(1 << options.n_layers(), 8);
    model->push_back(conv(ndf * prev, ndf * mult));
    model->push_back(nn::InstanceNorm2d(ndf * mult));
    model->push_back(lrelu());
    model->push_back(conv(ndf * mult, 1));
    register_module("model", model);
    init_xavier(*this);
  }

  /// Patch logits `[B,1,h,w]`; LSGAN compares them with 1 (real) and 0 (fake).
  torch::Tensor forward(const torch::Tensor& x) { return model->forward(x); }

  DiscriminatorOptions options;
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(PatchDiscriminator);

/// Side of the logit map PatchDiscriminator(n_layers) produces for a `side` x `side` input, or a value
/// < 1 when the input is too small (a 4x4 convolution would meet a smaller padded input).
/// Mirrors reset(): n_layers times (conv4 p1: side - 1, Downsample: ceil(side / 2)), then two conv4 p1.
inline int64_t discriminator_output_side(int64_t side, int64_t n_layers = 3) {
  for (int64_t n = 0; n < n_layers; ++n) {
    if (side < 2) return 0;  // conv4 with padding 1 needs side + 2 >= 4
    side -= 1;
    if (side < 2) return 0;  // Downsample's reflection pad of 1 needs side >= 2
    side = (side + 1) / 2;
  }
  for (int k = 0; k < 2; ++k) {
    if (side < 2) return 0;
    side -= 1;
  }
  return side;
}

/// Smallest training image side the trainer accepts: a multiple of 4 (the generator's two
/// stride-2 stages) for which the discriminator still produces at least one logit (24 for n_layers 3).
inline int64_t smallest_image_side(int64_t n_layers = 3) {
  int64_t side = 4;
  while (discriminator_output_side(side, n_layers) < 1) side += 4;
  return side;
}

}  // namespace trainer

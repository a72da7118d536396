// 70x70 PatchGAN discriminator (pix2pix/CycleGAN/CUT's NLayerDiscriminator, n_layers = 3,
// with CUT's anti-aliased stride: stride-1 conv followed by Downsample).
#pragma once

#include "antialias.hpp"

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

}  // namespace trainer

// CUT's ResNet generator (Johnson et al. 2016 with CUT's anti-aliased resampling).
//
//   c7s1-ngf, [d(2ngf), d(4ngf)] (conv3 + IN + ReLU + Downsample), n_blocks x ResnetBlock(4ngf),
//   [u(2ngf), u(ngf)] (Upsample + conv3 + IN + ReLU), c7s1-3, tanh.
//
// The layers live in one flat Sequential, in CUT's order, so that "layer 0, 4, 8, 12, 16"
// (CUT's --nce_layers) names the same activations here as in the reference code:
// 0 = reflection-padded input, 4 = first down conv, 8 = second down conv, 12 = first residual
// block, 16 = fifth residual block.
#pragma once

#include "trainer/nets/antialias.hpp"

#include <set>

namespace trainer {

/// x + (pad, conv3, IN, ReLU, pad, conv3, IN)(x), CUT's ResnetBlock without dropout.
class ResnetBlockImpl : public torch::nn::Cloneable<ResnetBlockImpl> {
 public:
  explicit ResnetBlockImpl(int64_t dim) : dim_(dim) { reset(); }
  void reset() override {
    namespace nn = torch::nn;
    block = register_module("conv_block",
                            nn::Sequential(nn::ReflectionPad2d(1), nn::Conv2d(nn::Conv2dOptions(dim_, dim_, 3)),
                                           nn::InstanceNorm2d(dim_), nn::ReLU(), nn::ReflectionPad2d(1),
                                           nn::Conv2d(nn::Conv2dOptions(dim_, dim_, 3)), nn::InstanceNorm2d(dim_)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + block->forward(x); }
  torch::nn::Sequential block{nullptr};

 private:
  int64_t dim_;
};
TORCH_MODULE(ResnetBlock);

struct GeneratorOptions {
  TORCH_ARG(int64_t, input_nc) = 3;
  TORCH_ARG(int64_t, output_nc) = 3;
  TORCH_ARG(int64_t, ngf) = 64;
  TORCH_ARG(int64_t, n_blocks) = 9;
};

class ResnetGeneratorImpl : public torch::nn::Cloneable<ResnetGeneratorImpl> {
 public:
  explicit ResnetGeneratorImpl(GeneratorOptions options = {}) : options(options) { reset(); }

  void reset() override {
    namespace nn = torch::nn;
    const int64_t ngf = options.ngf();
    model = nn::Sequential();
    model->push_back(nn::ReflectionPad2d(3));
    model->push_back(nn::Conv2d(nn::Conv2dOptions(options.input_nc(), ngf, 7)));
    model->push_back(nn::InstanceNorm2d(ngf));
    model->push_back(nn::ReLU());
    for (int64_t mult : {1, 2}) {
      model->push_back(nn::Conv2d(nn::Conv2dOptions(ngf * mult, ngf * mult * 2, 3).padding(1)));
      model->push_back(nn::InstanceNorm2d(ngf * mult * 2));
      model->push_back(nn::ReLU());
      model->push_back(Downsample(ngf * mult * 2));
    }
    for (int64_t i = 0; i < options.n_blocks(); ++i) model->push_back(ResnetBlock(ngf * 4));
    for (int64_t mult : {4, 2}) {
      model->push_back(Upsample(ngf * mult));
      model->push_back(nn::Conv2d(nn::Conv2dOptions(ngf * mult, ngf * mult / 2, 3).padding(1)));
      model->push_back(nn::InstanceNorm2d(ngf * mult / 2));
      model->push_back(nn::ReLU());
    }
    model->push_back(nn::ReflectionPad2d(3));
    model->push_back(nn::Conv2d(nn::Conv2dOptions(ngf, options.output_nc(), 7)));
    model->push_back(nn::Tanh());
    register_module("model", model);
    init_xavier(*this);
  }

  /// Translates a batch `[B,3,H,W]` in [-1,1]; H and W must be multiples of 4.
  torch::Tensor forward(const torch::Tensor& x) { return model->forward(x); }

  /// CUT's encode_only pass: the activations after each layer in `layers` (ascending order),
  /// stopping after the last one requested.
  std::vector<torch::Tensor> encode(const torch::Tensor& x, const std::vector<int64_t>& layers) {
    std::set<int64_t> wanted(layers.begin(), layers.end());
    std::vector<torch::Tensor> features;
    torch::Tensor h = x;
    int64_t index = 0;
    for (auto& layer : *model) {
      h = layer.forward(h);
      if (wanted.count(index)) features.push_back(h);
      if (features.size() == wanted.size()) break;
      ++index;
    }
    return features;
  }

  /// CUT's default --nce_layers 0,4,8,12,16, clipped to the residual blocks that exist
  /// (the deepest one stands in for 16 when there are fewer than five).
  std::vector<int64_t> default_nce_layers() const {
    std::vector<int64_t> layers = {0, 4, 8, 12};
    if (options.n_blocks() > 1) layers.push_back(12 + std::min<int64_t>(4, options.n_blocks() - 1));
    return layers;
  }

  /// Channels of the activation after `layer` (same order as `layers`).
  std::vector<int64_t> channels(const std::vector<int64_t>& layers) const {
    std::vector<int64_t> out;
    for (int64_t l : layers) {
      if (l < 0 || l >= static_cast<int64_t>(model->size()))
        throw std::invalid_argument("generator has no layer " + std::to_string(l));
      if (l <= 3) out.push_back(l == 0 ? options.input_nc() : options.ngf());
      else if (l <= 7) out.push_back(options.ngf() * 2);
      else if (l < 12 + options.n_blocks() || l <= 11) out.push_back(options.ngf() * 4);
      else throw std::invalid_argument("layer " + std::to_string(l) + " is in the decoder; use encoder layers");
    }
    return out;
  }

  GeneratorOptions options;
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(ResnetGenerator);

}  // namespace trainer

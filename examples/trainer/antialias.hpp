// Anti-aliased resampling layers of CUT (Zhang, "Making convolutional networks shift-invariant
// again", 2019), used by both the generator and the discriminator.
#pragma once

#include <torch/torch.h>

namespace trainer {

/// Binomial filter [1,2,1] (x) [1,2,1] / 16, applied per channel with stride 2 after reflection padding.
/// CUT's `Downsample(channels)` with filt_size 3.
class DownsampleImpl : public torch::nn::Cloneable<DownsampleImpl> {
 public:
  explicit DownsampleImpl(int64_t channels) : channels_(channels) { reset(); }
  void reset() override {
    auto f = torch::tensor({1.0, 2.0, 1.0}, torch::kFloat32);
    filter_ = register_buffer("filter", (f.unsqueeze(1) * f.unsqueeze(0) / 16.0).expand({channels_, 1, 3, 3}).clone());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
    return F::conv2d(padded, filter_, F::Conv2dFuncOptions().stride(2).groups(channels_));
  }
  void pretty_print(std::ostream& os) const override { os << "trainer::Downsample(" << channels_ << ")"; }

 private:
  int64_t channels_;
  torch::Tensor filter_;
};
TORCH_MODULE(Downsample);

/// CUT's `Upsample(channels)`: transposed convolution with the [1,3,3,1] (x) [1,3,3,1] filter
/// (scaled by stride^2 = 4) after replication padding, then the border rows CUT trims.
/// Output is exactly 2H x 2W.
class UpsampleImpl : public torch::nn::Cloneable<UpsampleImpl> {
 public:
  explicit UpsampleImpl(int64_t channels) : channels_(channels) { reset(); }
  void reset() override {
    auto f = torch::tensor({1.0, 3.0, 3.0, 1.0}, torch::kFloat32);
    auto f2 = f.unsqueeze(1) * f.unsqueeze(0);
    filter_ = register_buffer("filter", (f2 / f2.sum() * 4.0).expand({channels_, 1, 4, 4}).clone());
  }
  torch::Tensor forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
    auto y = F::conv_transpose2d(padded, filter_, F::ConvTranspose2dFuncOptions().stride(2).padding(2).groups(channels_));
    // [2H+2] -> drop the first and the last row/column -> [2H].
    using torch::indexing::Slice;
    return y.index({Slice(), Slice(), Slice(1, -1), Slice(1, -1)});
  }
  void pretty_print(std::ostream& os) const override { os << "trainer::Upsample(" << channels_ << ")"; }

 private:
  int64_t channels_;
  torch::Tensor filter_;
};
TORCH_MODULE(Upsample);

/// CUT's init_type 'xavier' with init_gain 0.02: conv/linear weights Xavier-normal, biases 0.
inline void init_xavier(torch::nn::Module& module, double gain = 0.02) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) {
    if (p.key().find("weight") != std::string::npos && p.value().dim() >= 2) {
      torch::nn::init::xavier_normal_(p.value(), gain);
    } else if (p.key().find("bias") != std::string::npos) {
      p.value().zero_();
    }
  }
}

}  // namespace trainer

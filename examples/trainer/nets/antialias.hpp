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
    filter_ = register_buffer("filter", (f.unsqueeze(1) * f.unsqueeze(0) / 16.0).view({1, 1, 3, 3}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    // The same filter for every channel: one single-channel convolution over [B*C,1,H,W] instead of
    // a depthwise one (LibTorch's CPU fallback runs grouped convolutions one group at a time).
    const auto B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    auto padded = F::pad(x.reshape({B * C, 1, H, W}), F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
    auto y = F::conv2d(padded, filter_, F::Conv2dFuncOptions().stride(2));
    return y.view({B, C, y.size(2), y.size(3)});
  }
  void pretty_print(std::ostream& os) const override { os << "trainer::Downsample(" << channels_ << ")"; }
  int64_t channels() const { return channels_; }
  /// The [1,1,3,3] filter (the buffer "filter"), shared by every channel.
  const torch::Tensor& filter() const { return filter_; }

 private:
  int64_t channels_;
  torch::Tensor filter_;
};
TORCH_MODULE(Downsample);

/// CUT's `Upsample(channels)`: replication padding, a stride-2 transposed convolution with the
/// [1,3,3,1] (x) [1,3,3,1] filter scaled by stride^2, then the border rows CUT trims.
/// Written out per output phase this is out[2m] = (x[m-1] + 3 x[m]) / 4, out[2m+1] = (3 x[m] + x[m+1]) / 4
/// with replicated borders, which is exactly bilinear x2 interpolation with align_corners = false;
/// that form is what runs here (LibTorch's CPU transposed convolution is ~10x slower). The test suite
/// checks the equality against the transposed-convolution definition.
class UpsampleImpl : public torch::nn::Cloneable<UpsampleImpl> {
 public:
  explicit UpsampleImpl(int64_t channels) : channels_(channels) { reset(); }
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{2 * x.size(2), 2 * x.size(3)})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  }
  void pretty_print(std::ostream& os) const override { os << "trainer::Upsample(" << channels_ << ")"; }
  int64_t channels() const { return channels_; }

 private:
  int64_t channels_;
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

// The feature network of `evaluate --data ... --features model.pt`: any TorchScript module that maps
// a batch of RGB images to one feature vector per image.
//
// Contract (scripts/export-inception.py writes such a module for Inception-v3 pool3, as pytorch-fid):
//   input   [B, 3, H, W] float32, RGB in [0, 1], any H and W (the module resizes if it needs to);
//   output  [B, D] or [B, D, 1, 1] floating point (a tensor, not a tuple or list).
// The file is untrusted input: every way it can fail is an error naming the file, what was
// expected and what was found.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace trainer::metrics {

/// The first line of a LibTorch error (its backtrace and context lines are noise to a user).
inline std::string first_line(const std::string& message) { return message.substr(0, message.find('\n')); }

class FeatureNetwork {
 public:
  FeatureNetwork(const std::filesystem::path& path, torch::Device device) : path_(path), device_(device) {
    if (!std::filesystem::is_regular_file(path))
      throw std::invalid_argument(
          fmt::format("--features: expected a TorchScript file (torch.jit.save), got '{}', "
                      "which does not exist or is not a file",
                      path.string()));
    try {
      module_ = torch::jit::load(path.string(), device);
    } catch (const c10::Error& e) {
      throw std::invalid_argument(fmt::format(
          "--features '{}': expected a TorchScript module saved with torch.jit.save (scripts/export-inception.py "
          "writes one), but it cannot be loaded: {}",
          path.string(), first_line(e.what_without_backtrace())));
    }
    module_.eval();
  }

  /// Features `[B, D]` (float64, CPU) of images `[B, 3, H, W]` in the generator's range [-1, 1].
  torch::Tensor features(const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    auto input = ((images.to(device_, torch::kFloat32) + 1.0) * 0.5).clamp(0.0, 1.0);
    torch::jit::IValue out;
    try {
      out = module_.forward({input});
    } catch (const c10::Error& e) {
      throw std::runtime_error(
          fmt::format("--features '{}': the network failed on a batch of shape {} (expected input: "
                      "[B, 3, H, W] RGB in [0, 1]): {}",
                      path_.string(), c10::str(input.sizes()), first_line(e.what_without_backtrace())));
    }
    const std::string expected = "a tensor [B, D] or [B, D, 1, 1]";
    if (!out.isTensor())
      throw std::runtime_error(fmt::format("--features '{}': the network must return {}, got a {}", path_.string(),
                                           expected, out.tagKind()));
    auto f = out.toTensor();
    const int64_t batch = input.size(0);
    const bool flat = f.dim() == 2, pooled = f.dim() == 4 && f.size(2) == 1 && f.size(3) == 1;
    if (!(flat || pooled) || f.size(0) != batch || !f.is_floating_point())
      throw std::runtime_error(
          fmt::format("--features '{}': the network must return {} of floating point (B = {}), "
                      "got shape {} of {}",
                      path_.string(), expected, batch, c10::str(f.sizes()), c10::str(f.scalar_type())));
    f = f.reshape({batch, f.size(1)}).to(torch::kCPU, torch::kFloat64);
    if (dim_ != 0 && f.size(1) != dim_)
      throw std::runtime_error(
          fmt::format("--features '{}': the feature dimension changed from {} to {} between batches", path_.string(),
                      dim_, f.size(1)));
    dim_ = f.size(1);
    return f;
  }

  /// D, known after the first batch (0 before).
  int64_t dim() const { return dim_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  torch::Device device_;
  torch::jit::Module module_;
  int64_t dim_ = 0;
};

}  // namespace trainer::metrics

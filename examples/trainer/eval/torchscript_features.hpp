// `evaluate --features-torchscript model.pt`: a user's own feature network as a TorchScript module,
// for features other than the standard FID network's (which `--features` reads natively from
// safetensors: nets/inception.hpp). TRUSTED INPUT ONLY: LibTorch's TorchScript loader is a parser of
// code and pickles that is not hardened against crafted files (docs/reliability.md); only the user's
// own files belong here. No default path of the trainer calls it (ctest trainer_no_torchscript).
//
// Contract: input [B, 3, H, W] float32, RGB in [0, 1], any H and W (the module resizes if it needs
// to); output [B, D] or [B, D, 1, 1] floating point (a tensor, not a tuple or list; feature_network.hpp
// checks it).
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

class TorchScriptFeatures {
 public:
  TorchScriptFeatures(const std::filesystem::path& path, torch::Device device) : path_(path) {
    try {
      module_ = torch::jit::load(path.string(), device);
    } catch (const c10::Error& e) {
      throw std::invalid_argument(
          fmt::format("--features-torchscript '{}': expected a TorchScript module saved with torch.jit.save, but it "
                      "cannot be loaded: {}",
                      path.string(), first_line(e.what_without_backtrace())));
    }
    module_.eval();
  }

  /// The module's output for `input` [B, 3, H, W] in [0, 1]; throws std::runtime_error when it fails or
  /// returns something other than a tensor.
  torch::Tensor operator()(const torch::Tensor& input) {
    torch::jit::IValue out;
    try {
      out = module_.forward({input});
    } catch (const c10::Error& e) {
      throw std::runtime_error(
          fmt::format("--features-torchscript '{}': the network failed on a batch of shape {} (expected input: "
                      "[B, 3, H, W] RGB in [0, 1]): {}",
                      path_.string(), c10::str(input.sizes()), first_line(e.what_without_backtrace())));
    }
    if (!out.isTensor())
      throw std::runtime_error(
          fmt::format("--features-torchscript '{}': the network must return a tensor [B, D] or [B, D, 1, 1], got a {}",
                      path_.string(), out.tagKind()));
    return out.toTensor();
  }

 private:
  std::filesystem::path path_;
  torch::jit::Module module_;
};

}  // namespace trainer::metrics

// The feature network of FID and KID (`evaluate --data / --run / --folders`): by default the standard
// FID network, TensorFlow's Inception-v3 to pool3, defined natively (nets/inception.hpp) with its weights
// from a safetensors file (`--features FILE`, scripts/export-inception.py writes it; every byte checked
// by the library's reader). A user's own TorchScript module is an explicit, trusted-input option
// (`--features-torchscript FILE`, torchscript_features.hpp).
//
// Either maps images [B, 3, H, W] RGB in [0, 1] to [B, D] (or [B, D, 1, 1]); every way it can fail is
// an error naming the option, the file, what was expected and what was found.
#pragma once

#include "trainer/eval/torchscript_features.hpp"
#include "trainer/nets/inception.hpp"

#include <torch/torch.h>

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace trainer::metrics {

/// Which network a feature file holds.
enum class FeatureFormat {
  kInception,    ///< `--features`: the FID Inception's weights, safetensors (nets/inception_weights.hpp)
  kTorchScript,  ///< `--features-torchscript`: a user's TorchScript module, trusted input
};

/// A feature network's file and format.
struct FeatureFile {
  std::filesystem::path path;
  FeatureFormat format = FeatureFormat::kInception;
  /// The command-line option that names this kind of file.
  std::string option() const { return format == FeatureFormat::kInception ? "--features" : "--features-torchscript"; }
};

class FeatureNetwork {
 public:
  FeatureNetwork(const FeatureFile& file, torch::Device device) : file_(file), device_(device) {
    const std::string& path = file.path.string();
    if (!std::filesystem::is_regular_file(file.path))
      throw std::invalid_argument(
          fmt::format("{}: expected {}, got '{}', which does not exist or is not a file", file.option(),
                      file.format == FeatureFormat::kInception
                          ? fmt::format("an Inception weight file ({} writes one)", kInceptionWeightsCommand)
                          : std::string("a TorchScript file (torch.jit.save)"),
                      path));
    if (file.format == FeatureFormat::kTorchScript) {
      forward_ = TorchScriptFeatures(file.path, device);
      return;
    }
    try {
      forward_ = [net = std::make_shared<FIDInception>(FIDInception::load(path, device))](const torch::Tensor& x) {
        return net->features(x);
      };
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(fmt::format("--features: {}", e.what()));
    }
  }

  /// Features `[B, D]` (float64, CPU) of images `[B, 3, H, W]` in the generator's range [-1, 1].
  torch::Tensor features(const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    const auto input = ((images.to(device_, torch::kFloat32) + 1.0) * 0.5).clamp(0.0, 1.0);
    auto f = forward_(input);
    const int64_t batch = input.size(0);
    const bool flat = f.dim() == 2, pooled = f.dim() == 4 && f.size(2) == 1 && f.size(3) == 1;
    if (!(flat || pooled) || f.size(0) != batch || !f.is_floating_point())
      throw std::runtime_error(
          fmt::format("{} '{}': the network must return a tensor [B, D] or [B, D, 1, 1] of floating point (B = {}), "
                      "got shape {} of {}",
                      file_.option(), file_.path.string(), batch, c10::str(f.sizes()), c10::str(f.scalar_type())));
    f = f.reshape({batch, f.size(1)}).to(torch::kCPU, torch::kFloat64);
    if (dim_ != 0 && f.size(1) != dim_)
      throw std::runtime_error(fmt::format("{} '{}': the feature dimension changed from {} to {} between batches",
                                           file_.option(), file_.path.string(), dim_, f.size(1)));
    dim_ = f.size(1);
    return f;
  }

  /// D, known after the first batch (0 before).
  int64_t dim() const { return dim_; }
  const std::filesystem::path& path() const { return file_.path; }

 private:
  FeatureFile file_;
  torch::Device device_;
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
  int64_t dim_ = 0;
};

}  // namespace trainer::metrics

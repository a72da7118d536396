// Frozen ImageNet VGG16 feature extractor (relu3_1, relu4_1, relu4_3), the features of the
// PatchGCL paper, defined natively and loaded from a weight file exported from torchvision:
//
//   python3 -c "import torch,torchvision; m=torchvision.models.vgg16(weights='IMAGENET1K_V1'); torch.save({k:v for k,v in m.features.state_dict().items() if int(k.split('.')[0])<=21}, 'vgg16_features.pt')"
//
// The file is a pickled dict {"0.weight": ..., "0.bias": ..., ..., "21.bias": ...} keyed by the
// torchvision `features` index (a "features." prefix is accepted too); torch::pickle_load reads it
// without Python. Only the convolutions up to conv4_3 (features.21) are needed.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>

namespace trainer {

class VGG16FeaturesImpl : public torch::nn::Module {
 public:
  /// torchvision `features` indices of the convolutions up to conv4_3, and their channels.
  static constexpr int kConvIndex[10] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21};
  static constexpr int kConvOut[10] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512};
  /// The paper's layers, as torchvision indices of the ReLU outputs: relu3_1, relu4_1, relu4_3.
  static std::vector<int> paper_layers() { return {11, 18, 22}; }

  VGG16FeaturesImpl() {
    int in = 3;
    for (int i = 0; i < 10; ++i) {
      convs.push_back(register_module(std::to_string(kConvIndex[i]),
                                      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, kConvOut[i], 3).padding(1))));
      in = kConvOut[i];
    }
    register_buffer("mean", mean_ = torch::tensor({0.485, 0.456, 0.406}, torch::kFloat32).view({1, 3, 1, 1}));
    register_buffer("std", std_ = torch::tensor({0.229, 0.224, 0.225}, torch::kFloat32).view({1, 3, 1, 1}));
    for (auto& p : parameters()) p.set_requires_grad(false);
  }

  /// Copies the weights from a file written by the export one-liner; every conv must be present
  /// with the right shape, otherwise std::runtime_error names the offending key.
  void load_weights(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open VGG16 weight file " + path.string());
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    c10::IValue value;
    try {
      value = torch::pickle_load(bytes);
    } catch (const std::exception& e) {
      throw std::runtime_error("VGG16 weight file " + path.string() + " is not a pickled tensor dict: " + e.what());
    }
    if (!value.isGenericDict()) throw std::runtime_error("VGG16 weight file " + path.string() + " does not hold a dict");
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& item : value.toGenericDict()) {
      std::string key = item.key().toStringRef();
      if (key.rfind("features.", 0) == 0) key = key.substr(9);
      if (item.value().isTensor()) tensors[key] = item.value().toTensor();
    }
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
      auto it = tensors.find(p.key());
      if (it == tensors.end())
        throw std::runtime_error("VGG16 weight file " + path.string() + " lacks '" + p.key() + "'");
      if (it->second.sizes() != p.value().sizes())
        throw std::runtime_error("VGG16 weight '" + p.key() + "' has shape " + shape(it->second) + ", expected " +
                                 shape(p.value()));
      p.value().copy_(it->second.to(p.value().dtype()));
    }
  }

  /// Features at the given ReLU outputs (torchvision indices, ascending) of images in [-1,1].
  std::vector<torch::Tensor> forward(const torch::Tensor& images, const std::vector<int>& relu_indices) {
    auto h = ((images + 1.0) * 0.5 - mean_) / std_;
    std::vector<torch::Tensor> out;
    size_t next = 0;
    for (int i = 0; i < 10 && next < relu_indices.size(); ++i) {
      if (i == 2 || i == 4 || i == 7) h = torch::max_pool2d(h, 2, 2);  // features.4, .9, .16
      h = torch::relu(convs[static_cast<size_t>(i)]->forward(h));
      if (kConvIndex[i] + 1 == relu_indices[next]) {
        out.push_back(h);
        ++next;
      }
    }
    if (next != relu_indices.size()) throw std::invalid_argument("VGG16FeaturesImpl: unsupported ReLU index");
    return out;
  }

  std::vector<torch::nn::Conv2d> convs;

 private:
  static std::string shape(const torch::Tensor& t) {
    return fmt::format("[{}]", fmt::join(t.sizes().begin(), t.sizes().end(), ","));
  }
  torch::Tensor mean_, std_;
};
TORCH_MODULE(VGG16Features);

}  // namespace trainer

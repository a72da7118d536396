#pragma once

// Reading and writing safetensors files (the recommended format for weights), reading either a
// safetensors or a `.pgt` file by its content, and loading a file's tensors into a module.
// Needs nlohmann-json (Debian: nlohmann-json3-dev): link the CMake target PatchGCL::safetensors.
//
// safetensors is the format of the `safetensors` Python package (`safetensors.torch.save_file`,
// `load_file`): an 8-byte header length, a JSON header (dtype, shape and data offsets of each
// tensor, a string-to-string `__metadata__`), then the raw little-endian data. It holds no code.
// Files are untrusted input: every header field is checked before anything is allocated, and a
// file that does not hold is refused with a TensorFileError naming the file, the field and the
// tensor (the rules: io/safetensors_format.hpp; docs/reliability.md, "The safetensors reader").
//
//     patchgcl::GraphNCELoss loss(patchgcl::GraphNCELossOptions::reference({256, 512, 512}));
//     patchgcl::io::load_parameters(*loss, "netF.safetensors");           // or a .pgt file
//     auto file = patchgcl::io::read_safetensors("netF.safetensors");     // tensors + __metadata__
//     patchgcl::io::write_safetensors("out.safetensors", file.tensors, file.config);

#include <patchgcl/io/safetensors_format.hpp>
#include <patchgcl/io/tensor_file.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace io {

namespace detail {

inline c10::ScalarType scalar_type_of(StDtype d) {
  switch (d) {
    case StDtype::kBool:
      return torch::kBool;
    case StDtype::kU8:
      return torch::kUInt8;
    case StDtype::kI8:
      return torch::kInt8;
    case StDtype::kI16:
      return torch::kInt16;
    case StDtype::kI32:
      return torch::kInt32;
    case StDtype::kI64:
      return torch::kInt64;
    case StDtype::kF16:
      return torch::kFloat16;
    case StDtype::kBF16:
      return torch::kBFloat16;
    case StDtype::kF32:
      return torch::kFloat32;
    case StDtype::kF64:
      return torch::kFloat64;
  }
  return torch::kFloat32;
}

inline StDtype st_dtype_of(c10::ScalarType t, const std::string& name) {
  for (const auto& e : st_dtypes()) {
    if (scalar_type_of(e.dtype) == t) return e.dtype;
  }
  TORCH_CHECK(false, "write_safetensors: tensor '", name, "' has dtype ", t,
              "; stored are bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64");
}

/// A string as a JSON string literal; refuses what is not UTF-8 (the reader would refuse it).
inline std::string st_json_string(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json(text).dump();
  } catch (const nlohmann::json::exception&) {
    TORCH_CHECK(false, "write_safetensors: ", what, " '", st_printable(text, 40), "' is not valid UTF-8");
  }
}

inline std::string read_whole_file(const std::string& path, const char* reader) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TensorFileError(reader, path, 0, "file", "cannot open it");
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw TensorFileError(reader, path, 0, "file", "reading it failed");
  return raw;
}

}  // namespace detail

/// Parses the bytes of a safetensors file (`path` only names it in errors). Tensors come back on
/// the CPU in the dtype they were stored in; `__metadata__` becomes TensorFile::config. Throws
/// TensorFileError for a file it refuses.
inline TensorFile parse_safetensors(const std::string& bytes, const std::string& path = "<memory>") {
  TORCH_CHECK(detail::little_endian_host(), "read_safetensors: big-endian hosts are not supported");
  const auto contents = detail::parse_safetensors_bytes(bytes.data(), bytes.size(), path);
  TensorFile file;
  for (const auto& kv : contents.metadata) file.config.emplace(kv.first, kv.second);
  for (const auto& t : contents.tensors) {
    // Checked by parse_safetensors_bytes: the shape's byte count is end - begin, inside `bytes`.
    auto tensor = torch::empty(t.shape, torch::TensorOptions().dtype(detail::scalar_type_of(t.dtype)));
    if (t.end > t.begin) std::memcpy(tensor.data_ptr(), t.data, static_cast<size_t>(t.end - t.begin));
    file.tensors.emplace(t.name, std::move(tensor));
  }
  return file;
}

/// Reads a safetensors file. Throws TensorFileError (file, field, tensor) for a file it cannot
/// open or refuses.
inline TensorFile read_safetensors(const std::string& path) {
  return parse_safetensors(detail::read_whole_file(path, "read_safetensors"), path);
}

/// The bytes of a safetensors file holding `tensors` and `metadata` (as `__metadata__`, left out
/// when empty). The same input gives the same bytes: tensors ordered by element size (largest
/// first, so that each is aligned to its element size) then name, the header compact JSON padded
/// with spaces to a multiple of 8 bytes, as the `safetensors` package pads it.
inline std::string safetensors_bytes(const std::map<std::string, torch::Tensor>& tensors,
                                     const std::map<std::string, std::string>& metadata = {}) {
  TORCH_CHECK(detail::little_endian_host(), "write_safetensors: big-endian hosts are not supported");
  struct Entry {
    std::string name;
    detail::StDtype dtype;
    torch::Tensor data;
  };
  std::vector<Entry> entries;
  for (const auto& kv : tensors) {
    TORCH_CHECK(kv.first != "__metadata__", "write_safetensors: '__metadata__' cannot name a tensor");
    TORCH_CHECK(kv.second.defined(), "write_safetensors: tensor '", kv.first, "' is undefined");
    auto t = kv.second.detach().to(torch::kCPU).contiguous();
    TORCH_CHECK(t.dim() <= kSafetensorsMaxDims, "write_safetensors: tensor '", kv.first, "' has ", t.dim(),
                " dimensions; at most ", kSafetensorsMaxDims, " are stored");
    entries.push_back({kv.first, detail::st_dtype_of(t.scalar_type(), kv.first), t});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return detail::st_element_size(a.dtype) > detail::st_element_size(b.dtype);
  });
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& kv : metadata) {
      if (!first) header += ",";
      first = false;
      header += detail::st_json_string(kv.first, "the metadata key") + ":" +
                detail::st_json_string(kv.second, "the value of metadata key '" + kv.first + "'");
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& e : entries) {
    if (header.size() > 1) header += ",";
    header += detail::st_json_string(e.name, "the tensor name") + ":{\"dtype\":\"" + detail::st_code(e.dtype) +
              "\",\"shape\":[";
    for (int64_t i = 0; i < e.data.dim(); ++i) header += (i ? "," : "") + std::to_string(e.data.size(i));
    const auto nbytes = static_cast<uint64_t>(e.data.nbytes());
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  TORCH_CHECK(header.size() <= kSafetensorsMaxHeader, "write_safetensors: the header would have ", header.size(),
              " bytes, more than the format's cap of ", kSafetensorsMaxHeader);
  std::string out;
  out.reserve(8 + header.size() + offset);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  for (const auto& e : entries) out.append(static_cast<const char*>(e.data.data_ptr()), e.data.nbytes());
  return out;
}

/// Writes a safetensors file (safetensors_bytes) that `safetensors.torch.load_file` reads.
inline void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const auto bytes = safetensors_bytes(tensors, metadata);
  std::ofstream out(path, std::ios::binary);
  TORCH_CHECK(out, "write_safetensors: cannot open '", path, "'");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  TORCH_CHECK(out, "write_safetensors: write to '", path, "' failed");
}

/// The bytes of a weights file in either format, told apart by their content (not the file's
/// name): a `.pgt` file starts with the line `PGT1`, a safetensors file with its header length
/// and '{'. `.pgt` files stay readable; safetensors is the format to write.
inline TensorFile parse_weights(const std::string& bytes, const std::string& path = "<memory>") {
  if (bytes.compare(0, 5, "PGT1\n") == 0) return parse_tensor_file(bytes, path);
  if (bytes.size() >= 9 && bytes[8] == '{') return parse_safetensors(bytes, path);
  throw TensorFileError("read_weights", path, 0, "format",
                        "neither a safetensors file (8-byte header length, then '{') nor a .pgt file (first line "
                        "'PGT1')");
}

/// Reads a safetensors or `.pgt` file (parse_weights). Throws TensorFileError.
inline TensorFile read_weights(const std::string& path) {
  return parse_weights(detail::read_whole_file(path, "read_weights"), path);
}

/// Loads the safetensors or `.pgt` file at `path` into `module` (read_weights, then
/// load_parameters of io/tensor_file.hpp with its checks).
inline void load_parameters(torch::nn::Module& module, const std::string& path,
                            const LoadParametersOptions& options = LoadParametersOptions()) {
  load_parameters(module, read_weights(path), options);
}

}  // namespace io
}  // namespace patchgcl

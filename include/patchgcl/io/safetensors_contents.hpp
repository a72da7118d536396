#pragma once

// What a parsed safetensors file holds (its dtypes, tensors and metadata) and how the reader's
// errors read; no LibTorch, no JSON (the format and its rules: io/safetensors_format.hpp).

#include <patchgcl/io/pgt_lines.hpp>
#include <patchgcl/io/tensor_file_error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace io {

/// The most dimensions a stored tensor may have (as in .pgt files).
constexpr int64_t kSafetensorsMaxDims = kPgtMaxDims;

namespace detail {

enum class StDtype { kBool, kU8, kI8, kI16, kI32, kI64, kF16, kBF16, kF32, kF64 };

struct StDtypeName {
  StDtype dtype;
  const char* code;
  int64_t size;
};

inline const std::vector<StDtypeName>& st_dtypes() {
  static const std::vector<StDtypeName> table = {
      {StDtype::kBool, "BOOL", 1}, {StDtype::kU8, "U8", 1},   {StDtype::kI8, "I8", 1},   {StDtype::kI16, "I16", 2},
      {StDtype::kI32, "I32", 4},   {StDtype::kI64, "I64", 8}, {StDtype::kF16, "F16", 2}, {StDtype::kBF16, "BF16", 2},
      {StDtype::kF32, "F32", 4},   {StDtype::kF64, "F64", 8}};
  return table;
}

inline int64_t st_element_size(StDtype d) {
  for (const auto& e : st_dtypes()) {
    if (e.dtype == d) return e.size;
  }
  return 1;
}

inline const char* st_code(StDtype d) {
  for (const auto& e : st_dtypes()) {
    if (e.dtype == d) return e.code;
  }
  return "?";
}

/// One tensor of the header, checked: `data` points at its `end - begin` bytes in the parsed buffer.
struct StTensor {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  int64_t begin = 0;
  int64_t end = 0;
  const char* data = nullptr;
};

/// A parsed file: `__metadata__` in file order, tensors in header order.
struct StContents {
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<StTensor> tensors;
};

inline TensorFileError st_error(const std::string& path, const std::string& field, const std::string& problem) {
  return TensorFileError("read_safetensors", path, 0, field, problem);
}

/// Text from the file in a message: at most `limit` bytes, non-printable bytes as \xNN.
inline std::string st_printable(const std::string& text, size_t limit = 200) { return printable(text, limit); }

}  // namespace detail
}  // namespace io
}  // namespace patchgcl

#pragma once

// The lines of a `.pgt` header, parsed and checked one at a time without LibTorch (the format
// and its rules: io/pgt_format.hpp, which parses a whole file with them).

#include <patchgcl/detail/integer.hpp>
#include <patchgcl/io/tensor_file_error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace patchgcl {
namespace io {

/// The most dimensions a stored tensor may have.
constexpr int64_t kPgtMaxDims = 64;

namespace detail {

enum class PgtDtype { kF64, kF32, kI64 };

inline int64_t pgt_element_size(PgtDtype d) { return d == PgtDtype::kF32 ? 4 : 8; }

/// One `tensor` line, checked: `data` points at its `nbytes` bytes inside the parsed buffer.
struct PgtTensor {
  std::string name;
  PgtDtype dtype = PgtDtype::kF64;
  std::vector<int64_t> shape;
  int64_t offset = 0;
  int64_t nbytes = 0;
  const char* data = nullptr;
  int64_t line = 0;
};

/// Plain decimal digits, at most `max`; false for anything else (sign, space, empty, overflow).
inline bool pgt_parse_count(const std::string& token, int64_t max, int64_t& value) {
  unsigned long long magnitude = 0;
  if (::patchgcl::detail::read_digits(token, 0, magnitude) != ::patchgcl::detail::IntegerText::kOk ||
      magnitude > static_cast<unsigned long long>(max))
    return false;
  value = static_cast<int64_t>(magnitude);
  return true;
}

/// The position of the first byte of the empty line that ends the header.
inline size_t pgt_header_end(const char* bytes, size_t size, const std::string& path) {
  const std::string magic = "PGT1\n";
  if (size < magic.size() || std::string(bytes, magic.size()) != magic) {
    throw TensorFileError(path, 1, "magic", "not a .pgt file: it must start with the line 'PGT1'");
  }
  // The header ends at the first empty line; no header line is empty.
  size_t end = magic.size() - 1;
  while (end + 1 < size && !(bytes[end] == '\n' && bytes[end + 1] == '\n')) ++end;
  if (end + 1 >= size) {
    throw TensorFileError(path, 0, "header", "no empty line ends the header (a truncated file, or not a .pgt file)");
  }
  return end;
}

/// The space-separated fields of header line `line_no`: printable ASCII, single spaces, none empty.
inline std::vector<std::string> pgt_fields(const std::string& line, int64_t line_no, const std::string& path) {
  for (size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c >= 0x7f) {
      throw TensorFileError(path, line_no, "line",
                            "byte " + pgt_quote(std::string(1, line[i])) + " at column " + std::to_string(i + 1) +
                                " (a header is printable ASCII, fields separated by single spaces)");
    }
  }
  std::vector<std::string> fields;
  for (size_t a = 0;;) {
    const size_t b = line.find(' ', a);
    fields.push_back(line.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (fields.back().empty()) {
      throw TensorFileError(path, line_no, "line",
                            "empty field " + std::to_string(fields.size()) +
                                " (fields are separated by single spaces, none at the start or end)");
    }
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return fields;
}

/// The dtype and shape fields of tensor line `t.line` into `t`; returns the tensor's byte count.
inline int64_t pgt_parse_dtype_and_shape(const std::vector<std::string>& fields, PgtTensor& t,
                                         const std::string& path) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t line_no = t.line;
  const std::string at = " of tensor " + pgt_quote(t.name);
  const auto& code = fields[2];
  if (code == "f64") {
    t.dtype = PgtDtype::kF64;
  } else if (code == "f32") {
    t.dtype = PgtDtype::kF32;
  } else if (code == "i64") {
    t.dtype = PgtDtype::kI64;
  } else {
    throw TensorFileError(path, line_no, "dtype", "expected f64, f32 or i64" + at + ", got " + pgt_quote(code));
  }
  int64_t ndim = 0;
  if (!pgt_parse_count(fields[3], kPgtMaxDims, ndim)) {
    throw TensorFileError(
        path, line_no, "ndim",
        "expected an integer in [0, " + std::to_string(kPgtMaxDims) + "]" + at + ", got " + pgt_quote(fields[3]));
  }
  if (static_cast<int64_t>(fields.size()) != 6 + ndim) {
    throw TensorFileError(path, line_no, "ndim",
                          "ndim " + std::to_string(ndim) + at + " needs " + std::to_string(6 + ndim) +
                              " fields on the line, got " + std::to_string(fields.size()));
  }
  // Elements, with zero extents counted as one: bounds every stride LibTorch computes.
  int64_t numel = 1, strided = 1;
  t.shape.reserve(static_cast<size_t>(ndim));
  for (int64_t i = 0; i < ndim; ++i) {
    int64_t d = 0;
    const std::string field = "shape[" + std::to_string(i) + "]";
    if (!pgt_parse_count(fields[static_cast<size_t>(4 + i)], kMax, d)) {
      throw TensorFileError(
          path, line_no, field,
          "expected a non-negative decimal integer" + at + ", got " + pgt_quote(fields[static_cast<size_t>(4 + i)]));
    }
    if (d > 1 && strided > kMax / d) {
      throw TensorFileError(path, line_no, field, "the shape" + at + " has more than 2^63 - 1 elements");
    }
    strided *= std::max<int64_t>(d, 1);
    numel *= d;
    t.shape.push_back(d);
  }
  const int64_t element = pgt_element_size(t.dtype);
  if (numel > kMax / element) {
    throw TensorFileError(path, line_no, "shape", "the tensor" + at + " needs more than 2^63 - 1 bytes");
  }
  return numel * element;
}

/// A `tensor <name> <dtype> <ndim> <d0> .. <offset> <nbytes>` line, checked against the data
/// section of `blob_size` bytes at `blob`.
inline PgtTensor pgt_parse_tensor(const std::vector<std::string>& fields, int64_t line_no, const char* blob,
                                  int64_t blob_size, const std::string& path) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (fields.size() < 4) {
    throw TensorFileError(path, line_no, "tensor",
                          "expected 'tensor <name> <dtype> <ndim> <d0> .. <offset> <nbytes>', got " +
                              std::to_string(fields.size()) + " fields");
  }
  PgtTensor t;
  t.name = fields[1];
  t.line = line_no;
  const std::string at = " of tensor " + pgt_quote(t.name);
  const int64_t expected = pgt_parse_dtype_and_shape(fields, t, path);
  const auto ndim = static_cast<size_t>(t.shape.size());
  const auto& offset_field = fields[4 + ndim];
  const auto& nbytes_field = fields[5 + ndim];
  if (!pgt_parse_count(offset_field, kMax, t.offset)) {
    throw TensorFileError(path, line_no, "offset",
                          "expected a non-negative decimal integer" + at + ", got " + pgt_quote(offset_field));
  }
  if (!pgt_parse_count(nbytes_field, kMax, t.nbytes)) {
    throw TensorFileError(path, line_no, "nbytes",
                          "expected a non-negative decimal integer" + at + ", got " + pgt_quote(nbytes_field));
  }
  if (t.nbytes != expected) {
    throw TensorFileError(
        path, line_no, "nbytes",
        "the shape and dtype" + at + " need " + std::to_string(expected) + " bytes, got " + std::to_string(t.nbytes));
  }
  if (t.offset > blob_size || t.nbytes > blob_size - t.offset) {
    throw TensorFileError(path, line_no, "offset",
                          "bytes [" + std::to_string(t.offset) + ", " + std::to_string(t.offset) + " + " +
                              std::to_string(t.nbytes) + ")" + at + " lie outside the data section of " +
                              std::to_string(blob_size) + " bytes");
  }
  t.data = blob + t.offset;
  return t;
}

}  // namespace detail
}  // namespace io
}  // namespace patchgcl

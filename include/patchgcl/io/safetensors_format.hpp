#pragma once

// The safetensors file format, parsed and validated without LibTorch: io/safetensors.hpp turns
// what this header accepts into tensors, and fuzz/safetensors_parse.cpp fuzzes it on its own.
// Needs nlohmann-json (Debian: nlohmann-json3-dev): the CMake target PatchGCL::safetensors.
//
//     <u64, little-endian: N>  <N bytes: JSON header>  <data section: raw little-endian tensors>
//
//     {"__metadata__": {"key": "value", ...},
//      "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...}
//
// (the format of the `safetensors` Python package, huggingface/safetensors). What is accepted
// (every failure is a TensorFileError naming the file, the field and the tensor; docs/reliability.md):
// - N <= 100,000,000 (the format's cap) and 8 + N <= the file's size; the header starts with '{'
//   and is UTF-8 JSON (trailing spaces, which writers pad with, are allowed);
// - the header is read by a SAX parser against the schema above: nothing is nested deeper than it
//   (three levels), no key repeats (in the header, a tensor's entry or `__metadata__`), a tensor's
//   entry has exactly the keys dtype, shape and data_offsets, `__metadata__` maps strings to strings;
// - dtype is one LibTorch has: BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64;
// - a shape has at most kSafetensorsMaxDims non-negative integer extents; the element count (zero
//   extents taken as one: a product that wraps to 0 is refused) and the byte count fit in int64;
// - data_offsets are two integers, BEGIN <= END <= the data section's size, END - BEGIN = the byte
//   count of the shape and dtype;
// - the tensors tile the data section from byte 0 with no gap, no overlap and no trailing byte.
// Nothing is allocated from a header field: the parse holds one record per tensor of the header,
// whose size the file bounds.

#include <patchgcl/io/data_coverage.hpp>
#include <patchgcl/io/pgt_format.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace io {

/// The longest JSON header a safetensors file may have (the format's own limit).
constexpr uint64_t kSafetensorsMaxHeader = 100000000;
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
      {StDtype::kBool, "BOOL", 1}, {StDtype::kU8, "U8", 1},     {StDtype::kI8, "I8", 1},
      {StDtype::kI16, "I16", 2},   {StDtype::kI32, "I32", 4},   {StDtype::kI64, "I64", 8},
      {StDtype::kF16, "F16", 2},   {StDtype::kBF16, "BF16", 2}, {StDtype::kF32, "F32", 4},
      {StDtype::kF64, "F64", 8}};
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
inline std::string st_printable(const std::string& text, size_t limit = 200) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (text.size() > limit) out += "...";
  return out;
}

/// nlohmann-json's SAX interface, checking the header against the schema as it is read.
class StHeaderSax {
 public:
  using json = nlohmann::json;

  StHeaderSax(const std::string& path, int64_t data_size, StContents& out)
      : path_(path), data_size_(data_size), out_(out) {}

  bool null() { return unexpected("null"); }
  bool boolean(bool value) { return unexpected(value ? "true" : "false"); }
  bool number_integer(json::number_integer_t value) { return number(value < 0, 0, std::to_string(value)); }
  bool number_unsigned(json::number_unsigned_t value) { return number(false, value, std::to_string(value)); }
  bool number_float(json::number_float_t, const json::string_t& text) {
    return unexpected("the number " + pgt_quote(text) + " (not an integer, or beyond 2^64 - 1)");
  }
  bool binary(json::binary_t&) { return unexpected("binary data"); }

  bool string(json::string_t& value) {
    if (state_ == State::kDtype) {
      for (const auto& e : st_dtypes()) {
        if (value == e.code) {
          tensor_.dtype = e.dtype;
          state_ = State::kTensorKeys;
          return true;
        }
      }
      throw st_error(path_, "dtype",
                     "expected BOOL, U8, I8, I16, I32, I64, F16, BF16, F32 or F64" + at() + ", got " +
                         pgt_quote(value));
    }
    if (state_ == State::kMetaValue) {
      out_.metadata.emplace_back(std::move(meta_key_), value);
      state_ = State::kMetaKeys;
      return true;
    }
    return unexpected("the string " + pgt_quote(value));
  }

  bool start_object(std::size_t) {
    if (state_ == State::kTop) {
      state_ = State::kTopKeys;
    } else if (state_ == State::kTensor) {
      tensor_keys_.clear();
      state_ = State::kTensorKeys;
    } else if (state_ == State::kMeta) {
      state_ = State::kMetaKeys;
    } else {
      return unexpected("an object");
    }
    return true;
  }

  bool key(json::string_t& key) {
    if (state_ == State::kTopKeys) {
      if (!names_.insert(key).second) {
        throw st_error(path_, key == "__metadata__" ? "__metadata__" : "name",
                       "the header names " + pgt_quote(key) + " twice");
      }
      if (key == "__metadata__") {
        state_ = State::kMeta;
      } else {
        tensor_ = StTensor();
        tensor_.name = key;
        state_ = State::kTensor;
      }
    } else if (state_ == State::kTensorKeys) {
      if (!tensor_keys_.insert(key).second) {
        throw st_error(path_, key, "the entry" + at() + " has the key " + pgt_quote(key) + " twice");
      }
      if (key == "dtype") {
        state_ = State::kDtype;
      } else if (key == "shape") {
        state_ = State::kShape;
      } else if (key == "data_offsets") {
        state_ = State::kOffsets;
      } else {
        throw st_error(path_, "tensor",
                       "the entry" + at() + " has the key " + pgt_quote(key) +
                           "; expected only dtype, shape and data_offsets");
      }
    } else {  // kMetaKeys: the parser sends keys only inside an object
      if (!meta_keys_.insert(key).second) {
        throw st_error(path_, "__metadata__", "the key " + pgt_quote(key) + " appears twice");
      }
      meta_key_ = key;
      state_ = State::kMetaValue;
    }
    return true;
  }

  bool end_object() {
    if (state_ == State::kTensorKeys) {
      finish_tensor();
      state_ = State::kTopKeys;
    } else if (state_ == State::kMetaKeys) {
      state_ = State::kTopKeys;
    } else {  // kTopKeys
      state_ = State::kDone;
    }
    return true;
  }

  bool start_array(std::size_t) {
    if (state_ == State::kShape) {
      tensor_.shape.clear();
      state_ = State::kShapeItems;
    } else if (state_ == State::kOffsets) {
      offsets_.clear();
      state_ = State::kOffsetsItems;
    } else {
      return unexpected("an array");
    }
    return true;
  }

  bool end_array() {
    if (state_ == State::kOffsetsItems && offsets_.size() != 2) {
      throw st_error(path_, "data_offsets",
                     "expected [BEGIN, END]" + at() + ", got " + std::to_string(offsets_.size()) + " integer(s)");
    }
    state_ = State::kTensorKeys;  // the end of a shape or of data_offsets
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    throw st_error(path_, "header",
                   "not valid JSON (byte " + std::to_string(position) + " of the header): " + st_printable(e.what()));
  }

  bool done() const { return state_ == State::kDone; }

 private:
  enum class State {
    kTop, kTopKeys, kTensor, kTensorKeys, kDtype, kShape, kShapeItems, kOffsets, kOffsetsItems,
    kMeta, kMetaKeys, kMetaValue, kDone
  };

  std::string at() const { return " of tensor " + pgt_quote(tensor_.name); }

  bool number(bool negative, uint64_t value, const std::string& text) {
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (state_ == State::kShapeItems) {
      const std::string field = "shape[" + std::to_string(tensor_.shape.size()) + "]";
      if (negative || value > kMax) {
        throw st_error(path_, field, "expected an integer in [0, 2^63 - 1]" + at() + ", got " + text);
      }
      if (static_cast<int64_t>(tensor_.shape.size()) >= kSafetensorsMaxDims) {
        throw st_error(path_, "shape",
                       "the shape" + at() + " has more than " + std::to_string(kSafetensorsMaxDims) + " dimensions");
      }
      tensor_.shape.push_back(static_cast<int64_t>(value));
      return true;
    }
    if (state_ == State::kOffsetsItems) {
      const std::string field = "data_offsets";
      if (negative || value > kMax) {
        throw st_error(path_, field, "expected an integer in [0, 2^63 - 1]" + at() + ", got " + text);
      }
      if (offsets_.size() == 2) throw st_error(path_, field, "expected [BEGIN, END]" + at() + ", got more integers");
      offsets_.push_back(static_cast<int64_t>(value));
      return true;
    }
    return unexpected("the number " + text);
  }

  /// A tensor's entry is complete: its shape, byte count and extent are checked.
  void finish_tensor() {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      if (!tensor_keys_.count(key)) throw st_error(path_, key, "the entry" + at() + " has no '" + key + "'");
    }
    // Elements, with zero extents counted as one: bounds every stride LibTorch computes, and a
    // product that wraps to 0 (2^32 x 2^32) is refused instead of read as an empty tensor.
    int64_t numel = 1, strided = 1;
    for (size_t i = 0; i < tensor_.shape.size(); ++i) {
      const int64_t d = tensor_.shape[i];
      if (d > 1 && strided > kMax / d) {
        throw st_error(path_, "shape[" + std::to_string(i) + "]",
                       "the shape" + at() + " has more than 2^63 - 1 elements");
      }
      strided *= std::max<int64_t>(d, 1);
      numel *= d;
    }
    const int64_t element = st_element_size(tensor_.dtype);
    if (numel > kMax / element) {
      throw st_error(path_, "shape", "the tensor" + at() + " needs more than 2^63 - 1 bytes");
    }
    const int64_t nbytes = numel * element;
    tensor_.begin = offsets_[0];
    tensor_.end = offsets_[1];
    if (tensor_.begin > tensor_.end) {
      throw st_error(path_, "data_offsets",
                     "BEGIN " + std::to_string(tensor_.begin) + " > END " + std::to_string(tensor_.end) + at());
    }
    if (tensor_.end > data_size_) {
      throw st_error(path_, "data_offsets",
                     "bytes [" + std::to_string(tensor_.begin) + ", " + std::to_string(tensor_.end) + ")" + at() +
                         " lie outside the data section of " + std::to_string(data_size_) + " bytes");
    }
    if (tensor_.end - tensor_.begin != nbytes) {
      throw st_error(path_, "data_offsets",
                     "the shape and dtype" + at() + " need " + std::to_string(nbytes) + " bytes, the offsets hold " +
                         std::to_string(tensor_.end - tensor_.begin));
    }
    out_.tensors.push_back(std::move(tensor_));
    tensor_ = StTensor();
  }

  [[noreturn]] bool unexpected(const std::string& what) {
    switch (state_) {
      case State::kTop:
        throw st_error(path_, "header", "the header must be a JSON object, got " + what);
      case State::kTensor:
        throw st_error(path_, "tensor",
                       "the entry" + at() + " must be an object {dtype, shape, data_offsets}, got " + what);
      case State::kDtype:
        throw st_error(path_, "dtype", "expected a string" + at() + ", got " + what);
      case State::kShape:
      case State::kShapeItems:
        throw st_error(path_, "shape", "expected an array of non-negative integers" + at() + ", got " + what);
      case State::kOffsets:
      case State::kOffsetsItems:
        throw st_error(path_, "data_offsets", "expected [BEGIN, END], two non-negative integers" + at() + ", got " + what);
      case State::kMeta:
        throw st_error(path_, "__metadata__", "expected an object of strings, got " + what);
      case State::kMetaValue:
        throw st_error(path_, "__metadata__",
                       "the value of " + pgt_quote(meta_key_) + " must be a string, got " + what);
      default:
        throw st_error(path_, "header", "unexpected " + what + " (nested deeper than the format's three levels)");
    }
  }

  const std::string& path_;
  int64_t data_size_;
  StContents& out_;
  State state_ = State::kTop;
  StTensor tensor_;
  std::set<std::string> names_;
  std::set<std::string> tensor_keys_;
  std::set<std::string> meta_keys_;
  std::vector<int64_t> offsets_;
  std::string meta_key_;
};

/// Every byte of the data section belongs to exactly one tensor, from byte 0 on (what the
/// `safetensors` package writes and requires).
inline void st_check_coverage(const std::vector<StTensor>& tensors, int64_t data_size, const std::string& path) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  ranges.reserve(tensors.size());
  for (const auto& t : tensors) ranges.emplace_back(t.begin, t.end);
  const CoverageProblem p = find_coverage_problem(ranges, data_size);
  switch (p.kind) {
    case CoverageProblem::kNone: return;
    case CoverageProblem::kOverlap:
      throw st_error(path, "data_offsets",
                     "the bytes of tensor " + pgt_quote(tensors[p.tensor].name) + " overlap those of tensor " +
                         pgt_quote(tensors[p.previous].name));
    case CoverageProblem::kGap:
      throw st_error(path, "data_offsets",
                     std::to_string(p.bytes) + " bytes of the data section before tensor " +
                         pgt_quote(tensors[p.tensor].name) + " belong to no tensor (offsets must be contiguous from 0)");
    case CoverageProblem::kTrailing:
      throw st_error(path, "data",
                     std::to_string(p.bytes) +
                         " bytes after the end of the last tensor belong to no tensor: trailing garbage, or a file "
                         "appended to");
  }
}

/// The header length of a safetensors file in `bytes[0, size)`, checked against the cap and the
/// file's size; `path` only names the file in errors.
inline uint64_t st_header_length(const char* bytes, size_t size, const std::string& path) {
  if (size < 8) {
    throw st_error(path, "header length",
                   "the file has " + std::to_string(size) + " bytes, fewer than the 8 of the header length");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > kSafetensorsMaxHeader) {
    throw st_error(path, "header length",
                   std::to_string(n) + " bytes is more than the format's cap of " +
                       std::to_string(kSafetensorsMaxHeader));
  }
  if (n > size - 8) {
    throw st_error(path, "header length",
                   std::to_string(n) + " bytes of header, but only " + std::to_string(size - 8) +
                       " bytes follow the length (a truncated file?)");
  }
  if (n == 0 || bytes[8] != '{') {
    throw st_error(path, "header", "the JSON header must start with '{'");
  }
  return n;
}

/// Parses and checks a whole safetensors file held in `bytes[0, size)`; `path` only names it in errors.
inline StContents parse_safetensors_bytes(const char* bytes, size_t size, const std::string& path) {
  const uint64_t n = st_header_length(bytes, size, path);
  const char* header = bytes + 8;
  const int64_t data_size = static_cast<int64_t>(size - 8 - n);
  StContents out;
  StHeaderSax sax(path, data_size, out);
  const bool ok = nlohmann::json::sax_parse(header, header + n, &sax);
  if (!ok || !sax.done()) throw st_error(path, "header", "the JSON header ends before its object does");
  const char* data = header + n;
  for (auto& t : out.tensors) t.data = data + t.begin;
  st_check_coverage(out.tensors, data_size, path);
  return out;
}

}  // namespace detail
}  // namespace io
}  // namespace patchgcl

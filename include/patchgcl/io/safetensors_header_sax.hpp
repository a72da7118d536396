#pragma once

// The JSON header of a safetensors file, checked against the format's schema while
// nlohmann-json's SAX parser reads it (the format and its rules: io/safetensors_format.hpp).

#include <patchgcl/io/safetensors_contents.hpp>
#include <patchgcl/io/tensor_file_error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace io {
namespace detail {

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
      throw st_error(
          path_, "dtype",
          "expected BOOL, U8, I8, I16, I32, I64, F16, BF16, F32 or F64" + at() + ", got " + pgt_quote(value));
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
        throw st_error(
            path_, "tensor",
            "the entry" + at() + " has the key " + pgt_quote(key) + "; expected only dtype, shape and data_offsets");
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
    kTop,
    kTopKeys,
    kTensor,
    kTensorKeys,
    kDtype,
    kShape,
    kShapeItems,
    kOffsets,
    kOffsetsItems,
    kMeta,
    kMetaKeys,
    kMetaValue,
    kDone
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
        throw st_error(path_, "data_offsets",
                       "expected [BEGIN, END], two non-negative integers" + at() + ", got " + what);
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

}  // namespace detail
}  // namespace io
}  // namespace patchgcl

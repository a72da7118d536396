#pragma once

// The safetensors file format, parsed and validated without LibTorch: io/safetensors.hpp turns
// what this header accepts into tensors, and fuzz/safetensors_parse.cpp fuzzes it on its own.
// Needs nlohmann-json (Debian: nlohmann-json3-dev): the CMake target PatchGCL::safetensors.
// The parsed records: io/safetensors_contents.hpp; the JSON schema: io/safetensors_header_sax.hpp;
// the header length and the coverage of the data section: here.
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
#include <patchgcl/io/safetensors_contents.hpp>
#include <patchgcl/io/safetensors_header_sax.hpp>
#include <patchgcl/io/tensor_file_error.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace io {

/// The longest JSON header a safetensors file may have (the format's own limit).
constexpr uint64_t kSafetensorsMaxHeader = 100000000;

namespace detail {

/// Every byte of the data section belongs to exactly one tensor, from byte 0 on (what the
/// `safetensors` package writes and requires).
inline void st_check_coverage(const std::vector<StTensor>& tensors, int64_t data_size, const std::string& path) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  ranges.reserve(tensors.size());
  for (const auto& t : tensors) ranges.emplace_back(t.begin, t.end);
  const CoverageProblem p = find_coverage_problem(ranges, data_size);
  switch (p.kind) {
    case CoverageProblem::kNone:
      return;
    case CoverageProblem::kOverlap:
      throw st_error(path, "data_offsets",
                     "the bytes of tensor " + pgt_quote(tensors[p.tensor].name) + " overlap those of tensor " +
                         pgt_quote(tensors[p.previous].name));
    case CoverageProblem::kGap:
      throw st_error(path, "data_offsets",
                     std::to_string(p.bytes) + " bytes of the data section before tensor " +
                         pgt_quote(tensors[p.tensor].name) +
                         " belong to no tensor (offsets must be contiguous from 0)");
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
    throw st_error(
        path, "header length",
        std::to_string(n) + " bytes is more than the format's cap of " + std::to_string(kSafetensorsMaxHeader));
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

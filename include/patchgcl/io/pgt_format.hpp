#pragma once

// The `.pgt` file format, parsed and validated without LibTorch: io/tensor_file.hpp turns what
// this header accepts into tensors, and fuzz/pgt_parse.cpp fuzzes it on its own. Its lines are
// parsed by io/pgt_lines.hpp; the whole file (uniqueness, coverage of the data section) here.
//
//     PGT1                                                         line 1, exactly
//     config <key> <value>                                         any number
//     tensor <name> <f64|f32|i64> <ndim> <d0> .. <dn-1> <offset> <nbytes>
//     <empty line>
//     <data section: raw little-endian, C-contiguous tensors at <offset> from its start>
//
// The header is printable ASCII; fields are separated by one space. What is accepted (every
// failure is a TensorFileError naming the file, the line and the field; docs/reliability.md):
// - integers are plain decimal digits (no sign, no spaces), at most 2^63 - 1;
// - ndim <= kPgtMaxDims; the element count (with zero extents taken as one) and the byte count
//   fit in int64; nbytes = (product of the shape) * (size of the dtype);
// - offset + nbytes lies within the data section, computed without overflow;
// - the tensors tile the data section exactly: no overlap, no gap, no trailing byte;
// - tensor names and config keys are unique.
// Nothing is allocated from a header field before it has been checked against the file's size:
// the only allocations are proportional to the number of bytes in the file.

#include <patchgcl/io/data_coverage.hpp>
#include <patchgcl/io/pgt_lines.hpp>
#include <patchgcl/io/tensor_file_error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {
namespace io {
namespace detail {

/// A parsed file, in file order.
struct PgtContents {
  std::vector<std::pair<std::string, std::string>> config;
  std::vector<PgtTensor> tensors;
};

/// Every byte of the data section (of `blob_size` bytes, from byte `blob_start` of the file)
/// belongs to exactly one tensor (what both writers produce).
inline void pgt_check_coverage(const std::vector<PgtTensor>& tensors, int64_t blob_size, size_t blob_start,
                               const std::string& path) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  ranges.reserve(tensors.size());
  for (const auto& t : tensors) ranges.emplace_back(t.offset, t.offset + t.nbytes);
  const CoverageProblem p = find_coverage_problem(ranges, blob_size);
  switch (p.kind) {
    case CoverageProblem::kNone:
      return;
    case CoverageProblem::kOverlap: {
      const PgtTensor &t = tensors[p.tensor], &previous = tensors[p.previous];
      throw TensorFileError(path, t.line, "offset",
                            "the bytes of tensor " + pgt_quote(t.name) + " overlap those of tensor " +
                                pgt_quote(previous.name) + " (line " + std::to_string(previous.line) + ")");
    }
    case CoverageProblem::kGap:
      throw TensorFileError(path, tensors[p.tensor].line, "offset",
                            std::to_string(p.bytes) + " bytes of the data section before tensor " +
                                pgt_quote(tensors[p.tensor].name) + " belong to no tensor");
    case CoverageProblem::kTrailing:
      throw TensorFileError(path, 0, "data",
                            std::to_string(p.bytes) + " bytes after the end of the last tensor (at byte " +
                                std::to_string(blob_start + static_cast<size_t>(p.covered)) +
                                " of the file) belong to no tensor: trailing garbage, or a file appended to");
  }
}

/// Parses and checks a whole `.pgt` file held in `bytes[0, size)`; `path` only names it in errors.
inline PgtContents parse_pgt(const char* bytes, size_t size, const std::string& path) {
  const size_t end = pgt_header_end(bytes, size, path);
  const char* blob = bytes + end + 2;
  const int64_t blob_size = static_cast<int64_t>(size - end - 2);

  PgtContents out;
  std::map<std::string, int64_t> config_lines, tensor_lines;
  int64_t line_no = 1;
  size_t pos = 5;  // after "PGT1\n"
  while (pos < end) {
    ++line_no;
    const size_t stop = std::min(end, static_cast<size_t>(std::find(bytes + pos, bytes + end, '\n') - bytes));
    const auto fields = pgt_fields(std::string(bytes + pos, stop - pos), line_no, path);
    pos = stop + 1;
    const std::string& kind = fields[0];
    if (kind == "config") {
      if (fields.size() != 3) {
        throw TensorFileError(path, line_no, "config",
                              "expected 'config <key> <value>', got " + std::to_string(fields.size()) + " fields");
      }
      auto seen = config_lines.emplace(fields[1], line_no);
      if (!seen.second) {
        throw TensorFileError(path, line_no, "key",
                              "duplicate config key " + pgt_quote(fields[1]) + " (first on line " +
                                  std::to_string(seen.first->second) + ")");
      }
      out.config.emplace_back(fields[1], fields[2]);
      continue;
    }
    if (kind != "tensor") {
      throw TensorFileError(path, line_no, "kind", "expected 'config' or 'tensor', got " + pgt_quote(kind));
    }
    auto t = pgt_parse_tensor(fields, line_no, blob, blob_size, path);
    auto seen = tensor_lines.emplace(t.name, line_no);
    if (!seen.second) {
      throw TensorFileError(
          path, line_no, "name",
          "duplicate tensor name " + pgt_quote(t.name) + " (first on line " + std::to_string(seen.first->second) + ")");
    }
    out.tensors.push_back(std::move(t));
  }
  pgt_check_coverage(out.tensors, blob_size, end + 2, path);
  return out;
}

}  // namespace detail
}  // namespace io
}  // namespace patchgcl

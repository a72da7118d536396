#pragma once

// Whether the tensors of a tensor file tile its data section exactly, the rule both readers
// (io/pgt_format.hpp, io/safetensors_format.hpp) apply: every byte belongs to exactly one tensor,
// from byte 0 on, with no overlap, no gap and no trailing byte. The readers word the error in
// their own format's terms. No LibTorch, no allocation beyond one pointer per tensor.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace patchgcl::io {

/// The first place where byte ranges fail to tile a data section; `kind` is kNone when they tile it.
struct CoverageProblem {
  enum Kind { kNone, kOverlap, kGap, kTrailing } kind = kNone;
  size_t tensor = 0;    ///< kOverlap, kGap: the tensor (index into the ranges) that starts wrongly
  size_t previous = 0;  ///< kOverlap: the last non-empty tensor before it
  int64_t bytes = 0;    ///< kGap: bytes before `tensor` that no tensor holds; kTrailing: bytes after the last
  int64_t covered = 0;  ///< kTrailing: where the last tensor ends
};

/// Checks that `ranges` ([begin, end) byte offsets, one per tensor, in any order; begin <= end)
/// tile [0, size) exactly. Ranges are visited by begin (then end), ties kept in file order.
inline CoverageProblem find_coverage_problem(const std::vector<std::pair<int64_t, int64_t>>& ranges, int64_t size) {
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  int64_t covered = 0;
  size_t previous = 0;  // begin < covered implies a non-empty range before
  for (const size_t i : order) {
    const auto [begin, end] = ranges[i];
    if (begin < covered) return {CoverageProblem::kOverlap, i, previous, 0, covered};
    if (begin > covered) return {CoverageProblem::kGap, i, 0, begin - covered, covered};
    covered = end;
    if (end > begin) previous = i;
  }
  if (covered != size) return {CoverageProblem::kTrailing, 0, 0, size - covered, covered};
  return {};
}

}  // namespace patchgcl::io

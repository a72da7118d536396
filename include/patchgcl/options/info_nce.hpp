#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/detail/checks.hpp>

#include <cmath>
#include <limits>

namespace patchgcl {

/// Which side's nodes are the rows (the anchors) of the InfoNCE softmax.
enum class Direction {
  kQueryToKey,  ///< row i: `q_i` against keys `k_j` (CUT's PatchNCE).
  kKeyToQuery,  ///< row i: `k_i` (= z_i of the input) against queries `q_j` (= v_j): Eq. 4 as written.
  kBoth,        ///< the sum of the two, as the released PatchGCL code computes it.
};

/// Where negatives come from.
enum class Negatives {
  kSameImage,   ///< the other patches of the same image (CUT's default, PatchGCL).
  kWholeBatch,  ///< every patch of the mini-batch (CUT's option for single-image training).
};

/// PUT's negative pruning.
enum class Pruning {
  kNone,
  /// Each anchor keeps its `hard_negatives` most similar negatives (the PUT paper's description).
  kHardestPerQuery,
  /// Exactly what PUT's released code computes: the `[B*N, N]` negative block (diagonal
  /// filled) is sorted *along dimension 0* (each column over the anchors, descending) and the
  /// first `hard_negatives` columns are kept. Row i then no longer holds i's own negatives,
  /// and with same-image negatives the sort runs over all images of the batch, coupling them.
  kReferenceColumnSort,
};

enum class Reduction {
  kNone,  ///< per-anchor loss, `[B, N]` (or `[N]`); kBoth adds the two directions per node.
  kMean,  ///< mean over anchors (the sum of the directions' means for kBoth).
};

/// Options of `functional::info_nce` (Eq. 4, PatchNCE, PUT).
///
///   auto loss = functional::info_nce(q, k, InfoNCEOptions().direction(Direction::kBoth));
struct InfoNCEOptions {
  /// tau > 0: logits are similarities divided by tau (0.07 in CUT and PatchGCL's code; Eq. 4 has none, i.e. 1).
  TORCH_ARG(double, temperature) = 0.07;
  /// The value the positive's duplicate in the negative block is replaced with before dividing
  /// by tau: -10 in CUT/PatchGCL/PUT code (exp(-10/tau) stays in the denominator), or
  /// -infinity to drop it (plain cross-entropy over `q k^T`, Eq. 4 exactly).
  TORCH_ARG(double, diagonal_value) = -10.0;
  TORCH_ARG(Direction, direction) = Direction::kQueryToKey;
  TORCH_ARG(Negatives, negatives) = Negatives::kSameImage;
  TORCH_ARG(Pruning, pruning) = Pruning::kNone;
  /// `k` of PUT: negatives kept per anchor by pruning (5 in the published runs).
  TORCH_ARG(int64_t, hard_negatives) = 5;
  TORCH_ARG(Reduction, reduction) = Reduction::kMean;
  /// NaN/Inf scan of the inputs: on by default on CPU, opt-in on CUDA (see FiniteCheck).
  TORCH_ARG(FiniteCheck, check_finite) = FiniteCheck::kAuto;

 public:
  static constexpr double kNoDiagonal = -std::numeric_limits<double>::infinity();
};

namespace detail {

/// The scalar options of InfoNCE, checked by info_nce and at construction of the losses.
inline void check_info_nce_options(const InfoNCEOptions& o, const char* fn) {
  check_positive(o.temperature(), fn, "temperature");
  TORCH_CHECK(!std::isnan(o.diagonal_value()) && o.diagonal_value() != std::numeric_limits<double>::infinity(), fn,
              ": `diagonal_value` must be finite or -infinity, got ", o.diagonal_value());
  if (o.pruning() != Pruning::kNone) check_at_least(o.hard_negatives(), 1, fn, "hard_negatives");
}

}  // namespace detail

}  // namespace patchgcl

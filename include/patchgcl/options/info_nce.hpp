#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/options/finite_check.hpp>

#include <limits>

namespace patchgcl {

/// Which side's nodes are the rows (the anchors) of the InfoNCE softmax. The two sides are the
/// `output` image's nodes (G(x): the paper's `v_i`, CUT's queries `q_i`) and the `input` image's
/// (x: the paper's `z_i`, CUT's keys `k_i`).
enum class Direction {
  kOutputToInput,  ///< row i: `v_i` against the input nodes `z_j` (CUT's PatchNCE, `q_i` against `k_j`).
  kInputToOutput,  ///< row i: `z_i` against the output nodes `v_j`: Eq. 4 as written.
  kBoth,           ///< the sum of the two, as the released PatchGCL code computes it.
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
  kHardestPerAnchor,
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
///   auto loss = functional::info_nce(v, z, InfoNCEOptions().direction(Direction::kBoth));
struct InfoNCEOptions {
  /// tau > 0: logits are similarities divided by tau (0.07 in CUT and PatchGCL's code; Eq. 4 has none, i.e. 1).
  TORCH_ARG(double, temperature) = 0.07;
  /// The value the positive's duplicate in the negative block is replaced with before dividing
  /// by tau: -10 in CUT/PatchGCL/PUT code (exp(-10/tau) stays in the denominator), or
  /// -infinity to drop it (plain cross-entropy over `V Z^T`, Eq. 4 exactly).
  TORCH_ARG(double, diagonal_value) = -10.0;
  TORCH_ARG(Direction, direction) = Direction::kOutputToInput;
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

}  // namespace patchgcl

#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/options/finite_check.hpp>

namespace patchgcl {

/// The nonlinearity applied to the projection score `p^T z_i` of an input node (Eq. 5-6).
enum class ScoreActivation {
  kSigmoid,  ///< sigma(p^T z + b): the paper and the released code.
  kTanh,     ///< tanh(p^T z / ||p||): PyTorch Geometric's TopKPooling (with divide_by_norm).
};

/// Which adjacency the pooled graph inherits.
enum class PooledAdjacency {
  kInduced,  ///< `A_p = A[idx, idx]`: the paper ("excluding the connections with non-selected nodes").
  kTwoHop,   ///< `A_p = bool(A A)[idx, idx]`: the released code keeps 2-hop connectivity.
};

/// Options of `TopKPool` (Eq. 5-8). Keeps `k` nodes when `k` is set, else
/// `max(2, floor(ratio * N))`.
///
///   TopKPool pool(TopKPoolOptions(256).ratio(0.25));
struct TopKPoolOptions {
  explicit TopKPoolOptions(int64_t in_channels) : in_channels_(in_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(double, ratio) = 0.25;
  TORCH_ARG(optional<int64_t>, k) = nullopt;
  TORCH_ARG(ScoreActivation, activation) = ScoreActivation::kSigmoid;
  /// A learnable bias on the score, as the released code's `Linear(nc, 1)` has.
  TORCH_ARG(bool, bias) = true;
  /// Divide `p^T z` by `||p||` (PyG).
  TORCH_ARG(bool, divide_by_norm) = false;
  TORCH_ARG(PooledAdjacency, pooled_adjacency) = PooledAdjacency::kTwoHop;
  /// N(0, init_std^2) weights and zero bias, as the released code initialises `proj`.
  TORCH_ARG(double, init_std) = 0.02;
  /// NaN/Inf scan of `output` and `input`: on by default on CPU, opt-in on CUDA (see FiniteCheck).
  TORCH_ARG(FiniteCheck, check_finite) = FiniteCheck::kAuto;
};

}  // namespace patchgcl

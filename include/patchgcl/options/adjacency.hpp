#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/options/finite_check.hpp>

namespace patchgcl {

/// How Eq. 1 compares cosine similarity with the threshold `t`.
enum class Comparison {
  kGreaterEqual,  ///< `A_ij = [cos(f_i, f_j) >= t]`, as the paper writes Eq. 1.
  kGreater,       ///< `A_ij = [cos(f_i, f_j) > t]`, as the released code computes it.
};

/// What `cosine_adjacency` puts on the diagonal.
enum class Diagonal {
  kAsComputed,  ///< Whatever Eq. 1 gives: 1 for any non-zero feature when t < 1.
  kZero,        ///< No self loops.
  kOne,         ///< Every node has a self loop, zero vectors included.
};

/// The self loops `s I` that `normalize_adjacency` puts into `M` before normalising.
enum class SelfLoops {
  kNone,    ///< `M = A` as given.
  kOne,     ///< `M = A` with its diagonal set to 1: exactly one self loop per node.
  kDouble,  ///< `M = A + I`: the released code (DGL's add_self_loop on an A whose diagonal
            ///< already holds Eq. 1's self similarity) gives every node a loop of weight 2.
};

/// Normalisation of `M` into `Abar`; degrees `d_i = sum_j M_ij` are clamped to at least 1.
enum class Normalization {
  kSymmetric,   ///< `Abar = D^-1/2 M D^-1/2` (GCN / TAGConv in DGL and PyG).
  kRandomWalk,  ///< `Abar = D^-1 M` (row-stochastic).
};

/// Options of `functional::cosine_adjacency` (Eq. 1).
///
///   auto A = functional::cosine_adjacency(f,
///   CosineAdjacencyOptions().threshold(0.1).comparison(Comparison::kGreater));
struct CosineAdjacencyOptions {
  /// Threshold `t` in [-1, 1]; 0.1 is the paper's best setting and the released run command's.
  TORCH_ARG(double, threshold) = 0.1;
  TORCH_ARG(Comparison, comparison) = Comparison::kGreaterEqual;
  TORCH_ARG(Diagonal, diagonal) = Diagonal::kAsComputed;
  /// Norms are clamped to `eps`, so a zero vector has cosine 0 with every node (no NaN).
  TORCH_ARG(double, eps) = 1e-8;
  /// Set to false when the features are already unit vectors (GraphNCELoss's head
  /// normalises them): the similarity is then the plain dot product, as in the reference code.
  TORCH_ARG(bool, normalize) = true;
  /// NaN/Inf scan of the features: on by default on CPU, opt-in on CUDA (see FiniteCheck).
  /// NaN would otherwise silently compare false and drop edges.
  TORCH_ARG(FiniteCheck, check_finite) = FiniteCheck::kAuto;
};

/// Options of `functional::normalize_adjacency`.
///
///   auto Abar = functional::normalize_adjacency(A, NormalizeAdjacencyOptions().self_loops(SelfLoops::kDouble));
struct NormalizeAdjacencyOptions {
  TORCH_ARG(Normalization, normalization) = Normalization::kSymmetric;
  TORCH_ARG(SelfLoops, self_loops) = SelfLoops::kOne;
  /// NaN/Inf scan of a floating-point adjacency: on by default on CPU, opt-in on CUDA (see FiniteCheck).
  TORCH_ARG(FiniteCheck, check_finite) = FiniteCheck::kAuto;
};

}  // namespace patchgcl

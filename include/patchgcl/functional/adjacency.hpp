#pragma once

// Eq. 1 (the shared adjacency A) and its normalisation Abar (Eq. 2-3).

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/options/adjacency.hpp>

namespace patchgcl {
namespace functional {
namespace detail {

/// `cosine_adjacency` on checked arguments (`options.check_finite()` is not read).
inline torch::Tensor cosine_adjacency(const torch::Tensor& features, const CosineAdjacencyOptions& options) {
  const double t = options.threshold();
  torch::NoGradGuard no_grad;
  auto x = patchgcl::detail::compute_precision(features.detach());
  if (options.normalize()) x = detail::l2_normalize(x, options.eps(), L2Eps::kClamp);
  // The comparison is written into the similarity buffer itself (0/1 in its dtype): no bool
  // [N, N] mask and no second [N, N] float copy.
  auto adjacency = torch::matmul(x, x.transpose(-1, -2));
  if (options.comparison() == Comparison::kGreater) adjacency.gt_(t);
  else adjacency.ge_(t);
  if (options.diagonal() != Diagonal::kAsComputed)
    adjacency.diagonal(0, -2, -1).fill_(options.diagonal() == Diagonal::kOne ? 1.0 : 0.0);
  return adjacency;
}

/// `normalize_adjacency` on checked arguments (`options.check_finite()` is not read).
inline torch::Tensor normalize_adjacency(const torch::Tensor& adjacency, const NormalizeAdjacencyOptions& options) {
  auto m =
      adjacency.is_floating_point() ? patchgcl::detail::compute_precision(adjacency) : adjacency.to(torch::kFloat32);
  // One fresh [N, N] buffer, scaled in place: the same products in the same order as
  // `d_i * m_ij * d_j`, without its two temporaries.
  m = m.is_same(adjacency) ? m.clone() : m;
  switch (options.self_loops()) {
    case SelfLoops::kNone:
      break;
    case SelfLoops::kOne:
      m.diagonal(0, -2, -1).fill_(1.0);
      break;
    case SelfLoops::kDouble:
      m.diagonal(0, -2, -1).add_(1.0);
      break;
  }
  auto degree = m.sum(-1).clamp_min(1.0);
  const bool in_place = !(m.requires_grad() && torch::GradMode::is_enabled());  // a weighted A may be learnt
  if (options.normalization() == Normalization::kRandomWalk)
    return in_place ? m.div_(degree.unsqueeze(-1)) : m / degree.unsqueeze(-1);
  auto d = degree.rsqrt();
  return in_place ? m.mul_(d.unsqueeze(-1)).mul_(d.unsqueeze(-2)) : d.unsqueeze(-1) * m * d.unsqueeze(-2);
}

}  // namespace detail

/// Eq. 1: `A_ij = [cos(f_i, f_j) >= t]` (or `> t`), one graph per image.
///
/// `features` is `[B, N, C]` or `[N, C]`; the result is `[B, N, N]` or `[N, N]` of 0/1 in the
/// features' dtype (float32 for half/bfloat16). It never carries gradient: the paper builds A
/// from the input image as prior knowledge, and the released code detaches it.
///
///   auto A = cosine_adjacency(z, CosineAdjacencyOptions().threshold(0.1));  // z: the input's nodes
inline torch::Tensor cosine_adjacency(const torch::Tensor& features, const CosineAdjacencyOptions& options = {}) {
  constexpr const char* fn = "cosine_adjacency";
  patchgcl::detail::check_nodes(features, fn, "features");
  patchgcl::detail::check_cosine_threshold(options.threshold(), fn, "threshold");
  patchgcl::detail::check_positive(options.eps(), fn, "eps");
  patchgcl::detail::check_finite(features, options.check_finite(), fn, "features");
  return detail::cosine_adjacency(features, options);
}

/// `Abar` from an adjacency `A` (`[B, N, N]` or `[N, N]`, 0/1 or weighted, bool accepted):
/// `M = A + s I` per `self_loops`, degrees `d_i = sum_j M_ij` clamped to >= 1 so isolated
/// nodes stay finite (as do negative or overflowing weights), then `D^-1/2 M D^-1/2` (symmetric) or `D^-1 M` (random
/// walk). Row i of `Abar X` aggregates node i's neighbours: `(Abar X)_i = sum_j Abar_ij x_j`.
///
///   auto Abar = normalize_adjacency(A, NormalizeAdjacencyOptions().self_loops(SelfLoops::kDouble));
inline torch::Tensor normalize_adjacency(const torch::Tensor& adjacency,
                                         const NormalizeAdjacencyOptions& options = {}) {
  constexpr const char* fn = "normalize_adjacency";
  patchgcl::detail::check_adjacency(adjacency, fn, "adjacency");
  patchgcl::detail::check_adjacency_dtype(adjacency, fn, "adjacency");
  if (adjacency.is_floating_point()) patchgcl::detail::check_finite(adjacency, options.check_finite(), fn, "adjacency");
  return detail::normalize_adjacency(adjacency, options);
}

}  // namespace functional
}  // namespace patchgcl

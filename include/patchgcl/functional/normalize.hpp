#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/detail/checks.hpp>

#include <cmath>

namespace patchgcl {
namespace functional {

/// How the epsilon of `l2_normalize` guards zero vectors.
enum class L2Eps {
  kClamp,  ///< `x / max(||x||, eps)` (torch.nn.functional.normalize).
  kAdd,    ///< `x / (||x|| + eps)` (CUT's Normalize, eps = 1e-7).
};

/// Unit vectors along the last dimension. Zero vectors stay zero, with zero gradient (the
/// formula's own gradient there is I / eps, 1e12 for the default eps: chained through a few
/// normalisations, as in GraphNCELoss, it overflows float32). Non-zero vectors shorter than
/// eps keep the formula's gradient.
///
/// The norm is taken of `x / 2^e` (`2^e` the largest power of two <= max |x_i| of the vector,
/// held constant): the squares neither overflow (|x| ~ 1e30 in float32) nor underflow
/// (|x| ~ 1e-30), and the scaling is exact, so the result equals the unscaled formula wherever
/// that one is representable. Half/bfloat16 are computed in float32 and returned in their dtype.
/// `check_finite`: NaN/Inf scan of `x` (see FiniteCheck).
inline torch::Tensor l2_normalize(const torch::Tensor& x, double eps = 1e-12, L2Eps mode = L2Eps::kClamp,
                                  FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "l2_normalize";
  detail::check_vectors(x, fn, "x");
  detail::check_positive(eps, fn, "eps");
  detail::check_finite(x, check_finite, fn, "x");
  auto y = detail::compute_precision(x);
  auto scale = detail::power_of_two_scale(y);
  y = y / scale;
  auto norm = y.norm(2, /*dim=*/{-1}, /*keepdim=*/true);
  auto scaled_eps = scale.reciprocal() * eps;
  auto out = mode == L2Eps::kClamp ? y / torch::max(norm, scaled_eps) : y / (norm + scaled_eps);
  out = torch::where(norm > 0, out, torch::zeros({}, out.options()));
  return out.scalar_type() == x.scalar_type() ? out : out.to(x.scalar_type());
}

}  // namespace functional
}  // namespace patchgcl

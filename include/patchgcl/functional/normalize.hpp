#pragma once

#include <patchgcl/compat.hpp>

namespace patchgcl {
namespace functional {

/// How the epsilon of `l2_normalize` guards zero vectors.
enum class L2Eps {
  kClamp,  ///< `x / max(||x||, eps)` (torch.nn.functional.normalize).
  kAdd,    ///< `x / (||x|| + eps)` (CUT's Normalize, eps = 1e-7).
};

/// Unit vectors along the last dimension. Zero vectors stay zero, with zero gradient.
inline torch::Tensor l2_normalize(const torch::Tensor& x, double eps = 1e-12, L2Eps mode = L2Eps::kClamp) {
  auto norm = x.norm(2, /*dim=*/{-1}, /*keepdim=*/true);
  return mode == L2Eps::kClamp ? x / norm.clamp_min(eps) : x / (norm + eps);
}

}  // namespace functional
}  // namespace patchgcl

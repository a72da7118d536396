#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>

#include <cmath>

namespace patchgcl {
namespace functional {

/// How the epsilon of `l2_normalize` guards zero vectors.
enum class L2Eps {
  kClamp,  ///< `x / max(||x||, eps)` (torch.nn.functional.normalize).
  kAdd,    ///< `x / (||x|| + eps)` (CUT's Normalize, eps = 1e-7).
};

namespace detail {

/// The scaled quantities of `l2_normalize`: `x = scale * y` (`scale` a power of two, exact),
/// `norm = ||y||`, `denom` the divisor of `y` (`max(norm, eps/scale)` or `norm + eps/scale`).
struct Scaled {
  torch::Tensor out, scale, norm, denom;
};

inline Scaled scaled_forward(const torch::Tensor& x, double eps, L2Eps mode) {
  Scaled r;
  r.scale = patchgcl::detail::power_of_two_scale(x);
  auto y = x / r.scale;
  r.norm = y.norm(2, /*dim=*/{-1}, /*keepdim=*/true);
  auto scaled_eps = r.scale.reciprocal().mul_(eps);
  r.denom = mode == L2Eps::kClamp ? torch::max(r.norm, scaled_eps) : r.norm + scaled_eps;
  r.out = y.div_(r.denom);  // a zero vector is 0 / (eps / scale) = 0
  return r;
}

/// The formula written with differentiable ops, for gradients of gradients (create_graph).
inline torch::Tensor composite(const torch::Tensor& x, double eps, L2Eps mode) {
  auto scale = patchgcl::detail::power_of_two_scale(x);
  auto y = x / scale;
  auto norm = y.norm(2, /*dim=*/{-1}, /*keepdim=*/true);
  auto scaled_eps = scale.reciprocal() * eps;
  auto out = mode == L2Eps::kClamp ? y / torch::max(norm, scaled_eps) : y / (norm + scaled_eps);
  return torch::where(norm > 0, out, torch::zeros({}, out.options()));
}

/// Unit rows `x / max(||x||, eps)` or `x / (||x|| + eps)` (`scaled_forward`) and, when
/// `for_backward`, the factors of their backward (`unit_rows_backward`):
///   inv = 1 / (scale denom) on non-zero rows, 0 on zero rows;
///   c = 1 (kClamp, ||x|| > eps), 0 (kClamp, clamped) or denom / norm (kAdd).
/// `l2_normalize`'s autograd node and the losses' fused nodes (modules/detail/) compute them here.
struct UnitRows {
  torch::Tensor out, inv, c;
};

inline UnitRows unit_rows(const torch::Tensor& x, double eps, bool for_backward, L2Eps mode = L2Eps::kClamp) {
  auto r = scaled_forward(x, eps, mode);
  UnitRows u{r.out, {}, {}};
  if (for_backward) {
    const auto dtype = r.norm.scalar_type();
    u.inv = r.scale.reciprocal().div_(r.denom).mul_(r.norm.gt(0).to(dtype));
    u.c = mode == L2Eps::kClamp ? r.norm.ge(r.denom).to(dtype)  // not clamped to eps
                                : torch::where(r.norm > 0, r.denom / r.norm, torch::zeros({}, r.norm.options()));
  }
  return u;
}

/// The backward of `unit_rows` from its factors (or a slice of them) and the gradient `g`:
///   dx = (g - out (out . g) c) inv,
/// four row-wise kernels instead of the ~15 of the composed formula.
inline torch::Tensor unit_rows_backward(const torch::Tensor& out, const torch::Tensor& inv, const torch::Tensor& c,
                                        const torch::Tensor& g) {
  auto dot = (out * g).sum(-1, /*keepdim=*/true).mul_(c);
  return torch::addcmul(g, out, dot, -1).mul_(inv);
}

/// `l2_normalize` as one autograd node: the forward (`unit_rows`, ~10 kernels) records no
/// graph, and the backward is `unit_rows_backward`. A backward that is itself differentiated
/// (create_graph) recomputes through `composite` instead.
struct L2Normalize : public torch::autograd::Function<L2Normalize> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double eps,
                               int64_t mode) {
    auto u = unit_rows(x, eps, /*for_backward=*/true, static_cast<L2Eps>(mode));
    ctx->save_for_backward({x, u.out, u.inv, u.c});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["mode"] = mode;
    return u.out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = grads[0];
    if (torch::GradMode::is_enabled()) {  // create_graph: a differentiable backward
      auto x = saved[0];
      auto out = composite(x, ctx->saved_data["eps"].toDouble(), static_cast<L2Eps>(ctx->saved_data["mode"].toInt()));
      auto dx = torch::autograd::grad({out}, {x}, {g}, /*retain_graph=*/true, /*create_graph=*/true);
      return {dx[0], torch::Tensor(), torch::Tensor()};
    }
    return {unit_rows_backward(saved[1], saved[2], saved[3], g), torch::Tensor(), torch::Tensor()};
  }
};

/// `l2_normalize` on checked arguments: one autograd node when `x` needs a gradient, no graph
/// otherwise. Half/bfloat16 are computed in float32 and returned in their dtype.
inline torch::Tensor l2_normalize(const torch::Tensor& x, double eps, L2Eps mode) {
  auto y = patchgcl::detail::compute_precision(x);
  torch::Tensor out;
  if (torch::GradMode::is_enabled() && y.requires_grad()) {
    out = L2Normalize::apply(y, eps, static_cast<int64_t>(mode));
  } else {
    torch::NoGradGuard no_grad;
    out = unit_rows(y, eps, /*for_backward=*/false, mode).out;
  }
  return out.scalar_type() == x.scalar_type() ? out : out.to(x.scalar_type());
}

}  // namespace detail

/// Unit vectors along the last dimension. Zero vectors stay zero, with zero gradient (the
/// formula's own gradient there is I / eps, 1e12 for the default eps: chained through a few
/// normalisations, as in GraphNCELoss, it overflows float32). Non-zero vectors shorter than
/// eps keep the formula's gradient.
///
/// The norm is taken of `x / 2^e` (`2^e` the largest power of two <= max |x_i| of the vector,
/// held constant): the squares neither overflow (|x| ~ 1e30 in float32) nor underflow
/// (|x| ~ 1e-30), and the scaling is exact, so the result equals the unscaled formula wherever
/// that one is representable. One autograd node with a fused backward (gradients of gradients
/// are supported). Half/bfloat16 are computed in float32 and returned in their dtype.
/// `check_finite`: NaN/Inf scan of `x` (see FiniteCheck).
inline torch::Tensor l2_normalize(const torch::Tensor& x, double eps = 1e-12, L2Eps mode = L2Eps::kClamp,
                                  FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "l2_normalize";
  patchgcl::detail::check_vectors(x, fn, "x");
  patchgcl::detail::check_positive(eps, fn, "eps");
  patchgcl::detail::check_finite(x, check_finite, fn, "x");
  return detail::l2_normalize(x, eps, mode);
}

}  // namespace functional
}  // namespace patchgcl

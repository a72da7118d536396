#pragma once

// Numeric helpers shared by functional/ and modules/ (the `patchgcl::detail` namespace): exact
// power-of-two rescaling and the dtype a computation runs in. They are not argument checks, so
// they live apart from detail/checks.hpp. Layer: detail/, below functional/.

#include <patchgcl/compat.hpp>

#include <cmath>

namespace patchgcl {
namespace detail {

/// `2^e` per vector (last dimension, kept), `e` the exponent of max_i |x_i| (the smallest
/// normal number for zero vectors), for float32/float64 `x`; constant (no gradient). Dividing by
/// it is exact and brings the largest entry into [1, 2).
inline torch::Tensor power_of_two_scale(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const bool f64 = x.scalar_type() == torch::kFloat64;
  TORCH_CHECK(f64 || x.scalar_type() == torch::kFloat32, "power_of_two_scale: float32 or float64 expected, got ",
              x.scalar_type());
  auto largest = x.detach().abs().amax(-1, /*keepdim=*/true);
  // Keep the exponent bits, clear the mantissa: the power of two at or below each value.
  auto scale = f64 ? largest.view(torch::kInt64).bitwise_and(int64_t{0x7FF0000000000000}).view(torch::kFloat64)
                   : largest.view(torch::kInt32).bitwise_and(int64_t{0x7F800000}).view(torch::kFloat32);
  return scale.clamp_min(f64 ? std::ldexp(1.0, -1022) : std::ldexp(1.0, -126));
}

/// Features entering a module with parameters of dtype `param`: reduced floats are promoted
/// (logits in float32), any other mismatch is an error rather than a silent cast.
inline torch::Tensor to_parameter_dtype(const torch::Tensor& x, const torch::Tensor& param, const char* fn,
                                        const char* name) {
  if (x.scalar_type() == param.scalar_type()) return x;
  TORCH_CHECK(compat::is_reduced_float(x.scalar_type()), fn, ": `", name, "` has dtype ", x.scalar_type(),
              " but the module's parameters are ", param.scalar_type(), "; convert one of them (e.g. module->to(",
              x.scalar_type(), "))");
  return x.to(param.scalar_type());
}

/// float32 for half/bfloat16, the tensor's own dtype otherwise.
inline torch::Tensor compute_precision(const torch::Tensor& x) {
  return compat::is_reduced_float(x.scalar_type()) ? x.to(torch::kFloat32) : x;
}

}  // namespace detail
}  // namespace patchgcl

#pragma once

// Finite-difference gradient checks for the Catch2 suite (float64, central differences).

#include <torch/torch.h>

#include <functional>
#include <string>

namespace patchgcl_test {

/// Max |autograd - numeric| / max(1, |numeric|) over every element of `wrt`, where the
/// numeric gradient of the scalar `f()` is taken by central differences of step `h`.
/// `wrt` must be a float64 leaf with requires_grad (a parameter or an input).
inline double gradient_error(const std::function<torch::Tensor()>& f, torch::Tensor wrt, double h = 1e-6) {
  if (wrt.grad().defined()) wrt.mutable_grad().zero_();
  f().backward();
  auto analytic = wrt.grad().defined() ? wrt.grad().clone() : torch::zeros_like(wrt);
  auto numeric = torch::zeros_like(wrt);
  {
    torch::NoGradGuard no_grad;
    auto flat = wrt.view({-1});
    auto out = numeric.view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double old = flat[i].item<double>();
      flat[i].fill_(old + h);
      const double plus = f().item<double>();
      flat[i].fill_(old - h);
      const double minus = f().item<double>();
      flat[i].fill_(old);
      out[i].fill_((plus - minus) / (2 * h));
    }
  }
  return ((analytic - numeric).abs() / numeric.abs().clamp_min(1.0)).max().item<double>();
}

/// Max relative difference, for comparing two tensors of the same shape.
inline double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs() / b.abs().clamp_min(1e-12)).max().item<double>();
}

inline double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

/// The smallest gap between two values of any row (last dimension) of `x`. Two computations of
/// `x` that round differently (another BLAS kernel, batched or not) rank every row alike (topk,
/// sort) when it is far above their rounding: a test that compares their rankings checks it first.
inline double smallest_gap(const torch::Tensor& x) {
  const auto sorted = std::get<0>(x.detach().sort(-1));
  const int64_t n = x.size(-1);
  return (sorted.narrow(-1, 1, n - 1) - sorted.narrow(-1, 0, n - 1)).min().item<double>();
}

/// The smallest |x - t|. Two computations of `x` that round differently give the same 0/1 of a
/// threshold at `t` when it is far above their rounding.
inline double distance_to(const torch::Tensor& x, double t) { return (x.detach() - t).abs().min().item<double>(); }

inline torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kFloat64); }

}  // namespace patchgcl_test

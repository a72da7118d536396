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

inline torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kFloat64); }

}  // namespace patchgcl_test

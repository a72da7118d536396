#pragma once

#include <patchgcl/compat.hpp>
#include <patchgcl/options/finite_check.hpp>

namespace patchgcl {

/// Options of `TAGConv` (Eq. 2-3).
///
///   TAGConv conv(TAGConvOptions(256, 256).hops(2));
struct TAGConvOptions {
  TAGConvOptions(int64_t in_channels, int64_t out_channels) : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// `L` of Eq. 2: hops 0..L are summed. The paper uses 2; 0 makes a plain linear layer.
  TORCH_ARG(int64_t, hops) = 2;
  /// The additive `b` (DGL's and the released code's Linear has one; Eq. 2 has none).
  TORCH_ARG(bool, bias) = true;
  /// Weights are drawn from N(0, init_std^2) and the bias is zero, as the released code's
  /// `init_net(..., 'normal', 0.02)` does.
  TORCH_ARG(double, init_std) = 0.02;
  /// NaN/Inf scan of `X` (or of both sides) and `Abar`: on by default on CPU, opt-in on CUDA (see FiniteCheck).
  TORCH_ARG(FiniteCheck, check_finite) = FiniteCheck::kAuto;
};

}  // namespace patchgcl

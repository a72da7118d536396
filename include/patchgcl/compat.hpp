#pragma once

// The one place where LibTorch 1.13 (Debian, CI) and 2.x (most users) differ for patchgcl.
// Everything else in the library uses API present in both.

#include <torch/torch.h>
#include <torch/version.h>

#include <cstdint>

namespace patchgcl {

// c10::optional became an alias of std::optional in 2.x; both spell `c10::optional`.
template <typename T>
using optional = c10::optional<T>;
using c10::nullopt;

namespace compat {

/// True when the LibTorch this translation unit is compiled against is 2.0 or newer.
constexpr bool kTorch2 = TORCH_VERSION_MAJOR >= 2;

/// Reduced-precision floating types: patchgcl computes logits and norms of these in float32.
inline bool is_reduced_float(c10::ScalarType t) {
  return t == c10::ScalarType::Half || t == c10::ScalarType::BFloat16;
}

}  // namespace compat
}  // namespace patchgcl

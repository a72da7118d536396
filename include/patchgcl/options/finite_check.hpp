#pragma once

namespace patchgcl {

/// When to scan inputs for NaN/Inf. The scan reads a flag back to the host, i.e. it
/// synchronises with a CUDA device, so `kAuto` checks on CPU only; CUDA users opt in
/// with `kAlways` (e.g. while debugging) and leave it off in production.
enum class FiniteCheck { kAuto, kAlways, kNever };

}  // namespace patchgcl

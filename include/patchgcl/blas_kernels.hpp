#pragma once

/// OpenBLAS's CPU kernels: which set it picked, and whether this CPU could run a faster one.
///
/// OpenBLAS builds for many CPUs at once (DYNAMIC_ARCH, as Debian's libopenblas0-pthread) choose
/// their kernels from the CPU model when they are loaded. A release older than the CPU does not
/// know the model and falls back to "Prescott", its SSE3 kernels, although the CPU has AVX2 or
/// AVX-512. Debian 12's OpenBLAS 0.3.21 does this on Intel Xeons of family 6 model 207 (Emerald
/// Rapids). Measured there on one core, sgemm 2048^3: 32.6 GFLOP/s as Prescott, 156 GFLOP/s with
/// OPENBLAS_CORETYPE=SkylakeX. Most of a loss's CPU time is sgemm (docs/benchmarks.md), so the
/// whole training step slows down by about that factor.
///
/// OPENBLAS_CORETYPE, set before the process starts, picks the kernels: SkylakeX for AVX-512
/// (F, BW, DQ, VL), Haswell for AVX2. blas_kernel_advice() says which one fits, or nothing when
/// OpenBLAS is not loaded or did not fall back.
///
///   if (auto advice = patchgcl::blas_kernel_advice(); !advice.empty()) std::cerr << "warning: " << advice << "\n";
///
/// Beside the umbrella header, which does not include it: it is about the process, not the
/// losses; include it where a program starts.

#include <string>

#include <patchgcl/threads.hpp>

namespace patchgcl {

/// The vector units of this CPU that OpenBLAS kernels use.
struct CpuVectorUnits {
  bool avx2 = false;
  bool avx512 = false;  ///< AVX-512 F, BW, DQ and VL: what OpenBLAS's SkylakeX kernels need
};

/// This CPU's vector units (x86-64 with GCC or Clang; none elsewhere).
inline CpuVectorUnits cpu_vector_units() {
  CpuVectorUnits units;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  units.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  units.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
  return units;
}

/// The kernel set OpenBLAS chose (openblas_get_corename: "Prescott", "Haswell", "SkylakeX", ...),
/// or "" where the process has no OpenBLAS loaded.
inline std::string blas_core_name() {
  auto name = detail::find_openblas<char* (*)()>("openblas_get_corename");
  const char* core = name == nullptr ? nullptr : name();
  return core == nullptr ? std::string() : std::string(core);
}

/// What to do when OpenBLAS runs its generic kernels on a CPU that has better ones: "" when
/// `core` is not OpenBLAS's fallback "Prescott" (any case), or the CPU has neither AVX2 nor AVX-512.
inline std::string blas_kernel_advice(const std::string& core, CpuVectorUnits cpu) {
  std::string lower;
  for (char c : core) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower != "prescott" || !(cpu.avx2 || cpu.avx512)) return {};
  const std::string fit = cpu.avx512 ? "SkylakeX" : "Haswell";
  const std::string units = cpu.avx512 ? "AVX-512" : "AVX2";
  return "OpenBLAS uses its generic SSE3 kernels (core '" + core +
         "': it does not know this CPU's model), although the CPU has " + units +
         "; its GEMMs, most of a loss's time, run several times slower (sgemm: 33 against 156 GFLOP/s on one " +
         "core where measured). Set OPENBLAS_CORETYPE=" + fit + " in the environment before the process starts.";
}

/// blas_kernel_advice for the OpenBLAS of this process and this CPU.
inline std::string blas_kernel_advice() { return blas_kernel_advice(blas_core_name(), cpu_vector_units()); }

}  // namespace patchgcl

#pragma once

/// CPU threads for the losses: LibTorch's intra-op pool and the BLAS behind its GEMMs.
///
/// Most of a loss's time on CPU is sgemm (docs/benchmarks.md). LibTorch builds that know their
/// BLAS (MKL, or OpenBLAS with BLAS_INFO=open) pass torch::set_num_threads on to it. Debian's
/// libtorch-dev 1.13 is built with BLAS_INFO=generic: it calls the system's libblas.so.3
/// (OpenBLAS from libopenblas0-pthread) without knowing it is OpenBLAS, so the BLAS keeps its own
/// thread pool, sized by OPENBLAS_NUM_THREADS or else by the number of cores, whatever
/// torch::set_num_threads says. patchgcl::set_num_threads sets both.
///
///   patchgcl::set_num_threads(2);  // instead of torch::set_num_threads(2)
///
/// OpenBLAS is found at run time (dlsym of openblas_set_num_threads in the process's global
/// scope), so there is no link dependency: with another BLAS, or none, only LibTorch is told and
/// set_blas_num_threads returns false. Without calling this, export OPENBLAS_NUM_THREADS=n before
/// the process starts (OpenBLAS reads it once, at load time).

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

namespace patchgcl {

namespace detail {

template <typename Fn>
Fn find_openblas(const char* symbol) {
#if defined(__unix__) || defined(__APPLE__)
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, symbol));
#else
  (void)symbol;
  return nullptr;
#endif
}

}  // namespace detail

/// Tells OpenBLAS, if the process has it loaded, to use `threads` threads. Returns whether it did.
inline bool set_blas_num_threads(int threads) {
  TORCH_CHECK(threads >= 1, "patchgcl::set_blas_num_threads: threads must be >= 1, got ", threads);
  auto set = detail::find_openblas<void (*)(int)>("openblas_set_num_threads");
  if (set == nullptr) return false;
  set(threads);
  return true;
}

/// OpenBLAS's thread count, or -1 where no OpenBLAS is loaded.
inline int blas_num_threads() {
  auto get = detail::find_openblas<int (*)()>("openblas_get_num_threads");
  return get == nullptr ? -1 : get();
}

/// torch::set_num_threads(threads) and the same for OpenBLAS where it is loaded (see above).
/// Returns whether OpenBLAS was told.
inline bool set_num_threads(int threads) {
  TORCH_CHECK(threads >= 1, "patchgcl::set_num_threads: threads must be >= 1, got ", threads);
  at::set_num_threads(threads);
  return set_blas_num_threads(threads);
}

}  // namespace patchgcl

#pragma once

// The spectrum of a patch graph: the eigenvectors of its normalised Laplacian, which the paper
// draws over the image to show that A follows the image's semantics (Fig. 9(c)).

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>

#include <algorithm>
#include <cstdint>

namespace patchgcl {
namespace functional {

/// The `k` smallest eigenpairs of a graph Laplacian, eigenvalues ascending.
struct LaplacianEigenpairs {
  torch::Tensor eigenvalues;   ///< `[B, k]` (or `[k]`), ascending.
  torch::Tensor eigenvectors;  ///< `[B, N, k]` (or `[N, k]`): column j belongs to eigenvalue j, unit norm.
};

/// `L = I - Abar`, the normalised Laplacian of a graph whose normalised adjacency is `abar`
/// (`[B, N, N]` or `[N, N]`; for `Abar = D^-1/2 M D^-1/2` this is `I - D^-1/2 M D^-1/2`).
inline torch::Tensor normalized_laplacian(const torch::Tensor& abar) {
  constexpr const char* fn = "normalized_laplacian";
  patchgcl::detail::check_floating(abar, 2, 3, "[B, N, N] or [N, N]", fn, "abar");
  TORCH_CHECK(abar.size(-1) == abar.size(-2), fn, ": `abar` must be square ([B, N, N] or [N, N]), got shape ",
              patchgcl::detail::shape_str(abar));
  auto x = patchgcl::detail::compute_precision(abar);
  return torch::eye(x.size(-1), x.options()) - x;
}

/// Fig. 9(c): the `k` smallest eigenpairs of `L = I - Abar`, per graph, eigenvalues ascending.
///
/// `abar` is the symmetric normalised adjacency `D^-1/2 M D^-1/2` of `normalize_adjacency`
/// (`[B, N, N]` or `[N, N]`, float; half/bfloat16 are computed in float32); `1 <= k <= N`.
/// The eigenvalues lie in [0, 2]; the first is 0 with eigenvector `D^1/2 1` (normalised), and a
/// graph with c connected components has c zero eigenvalues. The low eigenvectors vary slowly
/// over the graph: drawn over the sampled patches they show its clusters (spectral clustering,
/// Shi & Malik 2000; Ng, Jordan & Weiss 2001).
///
/// An eigenvector's sign is arbitrary; it is fixed so that its entry of largest magnitude is
/// positive, so the result does not depend on the batch a graph is computed in. For a repeated
/// eigenvalue any orthonormal basis of its eigenspace is valid.
///
/// `check` scans `abar` for NaN/Inf and asymmetry on the host (the decomposition reads only one
/// triangle: a random-walk `D^-1 M` is not symmetric and would be misread): on CPU by default,
/// on CUDA with `FiniteCheck::kAlways`.
///
///   auto abar = normalize_adjacency(cosine_adjacency(z));
///   auto pairs = laplacian_eigenvectors(abar, 4);  // pairs.eigenvectors: [B, N, 4]
inline LaplacianEigenpairs laplacian_eigenvectors(const torch::Tensor& abar, int64_t k,
                                                  FiniteCheck check = FiniteCheck::kAuto) {
  constexpr const char* fn = "laplacian_eigenvectors";
  patchgcl::detail::check_floating(abar, 2, 3, "[B, N, N] or [N, N]", fn, "abar");
  TORCH_CHECK(abar.size(-1) == abar.size(-2), fn, ": `abar` must be square ([B, N, N] or [N, N]), got shape ",
              patchgcl::detail::shape_str(abar));
  const int64_t n = abar.size(-1);
  TORCH_CHECK(k >= 1 && k <= n, fn, ": `k` must be in [1, N] = [1, ", n, "] (N nodes of `abar`), got ", k);
  patchgcl::detail::check_finite(abar, check, fn, "abar");
  torch::NoGradGuard no_grad;
  const bool batched = abar.dim() == 3;
  auto x = patchgcl::detail::compute_precision(abar.detach());
  x = batched ? x : x.unsqueeze(0);
  if (patchgcl::detail::finite_check_active(check, x)) {
    const double scale = x.abs().max().item<double>();
    const double asym = (x - x.transpose(-1, -2)).abs().max().item<double>();
    const double tol = (x.scalar_type() == torch::kFloat64 ? 1e-12 : 1e-5) * std::max(scale, 1.0);
    TORCH_CHECK(asym <= tol, fn, ": `abar` must be symmetric (D^-1/2 M D^-1/2, Normalization::kSymmetric), got ",
                "max |abar - abar^T| = ", asym, " (tolerance ", tol, ")");
  }
  auto laplacian = torch::eye(n, x.options()) - x;
  auto eig = torch::linalg_eigh(laplacian, "L");  // ascending eigenvalues, orthonormal columns
  using torch::indexing::Slice;
  auto values = std::get<0>(eig).index({Slice(), Slice(0, k)}).contiguous();            // [B, k]
  auto vectors = std::get<1>(eig).index({Slice(), Slice(), Slice(0, k)}).contiguous();  // [B, N, k]
  // Sign: the entry of largest magnitude of each column is made positive.
  auto largest = vectors.abs().argmax(1, /*keepdim=*/true);  // [B, 1, k]
  auto sign = vectors.gather(1, largest).sign();
  vectors.mul_(torch::where(sign == 0, torch::ones_like(sign), sign));
  if (!batched) return {values.squeeze(0), vectors.squeeze(0)};
  return {values, vectors};
}

}  // namespace functional
}  // namespace patchgcl

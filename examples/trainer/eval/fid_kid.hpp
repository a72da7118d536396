// FID and KID between two sets of image features ([N, D] each), as the field reports them.
//
//   FID (Heusel et al. 2017) = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^1/2)
//     mu, S: mean and covariance (unbiased, 1/(N-1), as numpy.cov) of each set. Computed in
//     float64. pytorch-fid takes scipy.linalg.sqrtm(S_1 S_2); only its trace enters FID, and
//     Tr (S_1 S_2)^1/2 = sum_i sqrt(lambda_i(S_1^1/2 S_2 S_1^1/2)): S_1 S_2 is similar to the
//     symmetric positive semi-definite S_1^1/2 S_2 S_1^1/2 (same eigenvalues), whose eigenvalues
//     eigh computes stably, also for the rank-deficient covariances of fewer images than dims.
//
//   KID (Binkowski et al. 2018, "Demystifying MMD GANs") = mean over subsets of the unbiased
//     MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3:
//       MMD^2 = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
//               - 2 sum_{i,j} k(x_i, y_j) / m^2
//     (the reference code's default estimator, `mmd_est='unbiased'`), on `subsets` random
//     subsets of m = min(subset_size, N_1, N_2) features of each set, drawn without replacement
//     (the reference and torch-fidelity: 100 subsets of 1000). Reported as mean and standard
//     deviation over the subsets.
//
// tests/reference/fid_kid_reference.py computes both with numpy/scipy (pytorch-fid's formula)
// for the fixture tests/fixtures/fid_kid.pgt.
#pragma once

#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace trainer::metrics {

/// Mean `[D]` and unbiased covariance `[D, D]` of a feature set, float64 on the CPU.
struct FeatureStatistics {
  torch::Tensor mean;
  torch::Tensor covariance;
  int64_t count = 0;
};

/// Checks a feature set `[N, D]`: defined, floating point, finite, N >= `min_count`.
inline void check_features(const torch::Tensor& features, const std::string& name, int64_t min_count) {
  if (!features.defined())
    throw std::invalid_argument(fmt::format("{}: expected features [N, D], got an undefined tensor", name));
  if (features.dim() != 2 || features.size(1) < 1)
    throw std::invalid_argument(
        fmt::format("{}: expected features [N, D], got shape {}", name, c10::str(features.sizes())));
  if (!features.is_floating_point())
    throw std::invalid_argument(
        fmt::format("{}: expected floating-point features, got {}", name, c10::str(features.scalar_type())));
  if (features.size(0) < min_count)
    throw std::invalid_argument(
        fmt::format("{}: needs at least {} feature vectors (images), got {}", name, min_count, features.size(0)));
  if (!torch::isfinite(features).all().item<bool>())
    throw std::invalid_argument(fmt::format("{}: the features contain NaN or Inf", name));
}

inline FeatureStatistics feature_statistics(const torch::Tensor& features, const std::string& name = "features") {
  check_features(features, name, 2);
  auto x = features.detach().to(torch::kCPU, torch::kFloat64);
  FeatureStatistics s;
  s.count = x.size(0);
  s.mean = x.mean(0);
  auto centred = x - s.mean;
  s.covariance = centred.t().mm(centred) / static_cast<double>(s.count - 1);
  return s;
}

/// `S^1/2` of a symmetric positive semi-definite matrix (negative rounding noise clamped to 0).
inline torch::Tensor psd_sqrt(const torch::Tensor& s) {
  auto eig = torch::linalg_eigh(s, "L");
  auto values = std::get<0>(eig).clamp_min(0.0).sqrt();
  const auto& vectors = std::get<1>(eig);
  return (vectors * values.unsqueeze(0)).mm(vectors.t());
}

/// `Tr (S_1 S_2)^1/2` as the sum of the square roots of the eigenvalues of `S_1^1/2 S_2 S_1^1/2`.
inline double trace_sqrt_product(const torch::Tensor& s1, const torch::Tensor& s2) {
  auto r = psd_sqrt(s1);
  auto m = r.mm(s2).mm(r);
  m = (m + m.t()) * 0.5;  // symmetric up to rounding; eigh reads one triangle
  return torch::linalg_eigvalsh(m, "L").clamp_min(0.0).sqrt().sum().item<double>();
}

/// The Frechet distance between two Gaussians `N(mu_1, S_1)`, `N(mu_2, S_2)`.
inline double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b) {
  if (a.mean.size(0) != b.mean.size(0))
    throw std::invalid_argument(
        fmt::format("FID: both feature sets need the same dimension D, got {} and {}", a.mean.size(0), b.mean.size(0)));
  const double mean_term = (a.mean - b.mean).pow(2).sum().item<double>();
  const double traces = a.covariance.trace().item<double>() + b.covariance.trace().item<double>();
  return mean_term + traces - 2.0 * trace_sqrt_product(a.covariance, b.covariance);
}

/// FID between the features `[N_1, D]` of the translated images and `[N_2, D]` of the real ones.
inline double fid(const torch::Tensor& translated, const torch::Tensor& real) {
  return frechet_distance(feature_statistics(translated, "translated features"),
                          feature_statistics(real, "real features"));
}

/// `k(x, y) = (x.y / D + 1)^3` for all pairs of rows: `[M, D] x [N, D] -> [M, N]`.
inline torch::Tensor polynomial_kernel(const torch::Tensor& x, const torch::Tensor& y) {
  return (x.mm(y.t()) / static_cast<double>(x.size(1)) + 1.0).pow(3);
}

/// The unbiased MMD^2 of two equally large samples `[m, D]` (m >= 2) with the cubic kernel.
inline double polynomial_mmd2(const torch::Tensor& x, const torch::Tensor& y) {
  if (x.dim() != 2 || y.dim() != 2 || x.size(0) != y.size(0) || x.size(1) != y.size(1) || x.size(0) < 2)
    throw std::invalid_argument(
        fmt::format("KID: expected two samples [m, D] of the same shape with m >= 2, got {} and {}",
                    c10::str(x.sizes()), c10::str(y.sizes())));
  auto a = x.to(torch::kFloat64), b = y.to(torch::kFloat64);
  const double m = static_cast<double>(a.size(0));
  auto kxx = polynomial_kernel(a, a), kyy = polynomial_kernel(b, b), kxy = polynomial_kernel(a, b);
  const double within = (kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()).item<double>() / (m * (m - 1.0));
  return within - 2.0 * kxy.sum().item<double>() / (m * m);
}

struct KidOptions {
  int64_t subsets = 100;       ///< random subsets averaged (the reference: 100)
  int64_t subset_size = 1000;  ///< features per subset, capped at the smaller set
  uint64_t seed = 0;           ///< the subsets are drawn from this seed: same features, same KID
};

struct KidResult {
  double mean = 0;  ///< KID: the mean MMD^2 over the subsets
  double std = 0;   ///< its standard deviation over the subsets (population, as numpy.std)
  int64_t subsets = 0;
  int64_t subset_size = 0;
};

/// KID of translated vs real features (`[N_1, D]`, `[N_2, D]`, N >= 2 each).
inline KidResult kid(const torch::Tensor& translated, const torch::Tensor& real, const KidOptions& options = {}) {
  check_features(translated, "translated features", 2);
  check_features(real, "real features", 2);
  if (translated.size(1) != real.size(1))
    throw std::invalid_argument(fmt::format("KID: both feature sets need the same dimension D, got {} and {}",
                                            translated.size(1), real.size(1)));
  if (options.subsets < 1 || options.subset_size < 2)
    throw std::invalid_argument(fmt::format("KID: expected subsets >= 1 and subset_size >= 2, got {} and {}",
                                            options.subsets, options.subset_size));
  auto x = translated.detach().to(torch::kCPU, torch::kFloat64);
  auto y = real.detach().to(torch::kCPU, torch::kFloat64);
  KidResult r;
  r.subsets = options.subsets;
  r.subset_size = std::min({options.subset_size, x.size(0), y.size(0)});
  auto gen = at::detail::createCPUGenerator(options.seed);
  auto values = torch::empty({options.subsets}, torch::kFloat64);
  for (int64_t s = 0; s < options.subsets; ++s) {
    auto ix = torch::randperm(x.size(0), gen, torch::kLong).slice(0, 0, r.subset_size);
    auto iy = torch::randperm(y.size(0), gen, torch::kLong).slice(0, 0, r.subset_size);
    values[s] = polynomial_mmd2(x.index_select(0, ix), y.index_select(0, iy));
  }
  r.mean = values.mean().item<double>();
  r.std = values.std(/*unbiased=*/false).item<double>();  // numpy.std, as torch-fidelity reports it
  return r;
}

}  // namespace trainer::metrics

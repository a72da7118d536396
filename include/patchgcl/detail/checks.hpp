#pragma once

// Argument checks shared by functional/ and modules/ (the `patchgcl::detail` namespace). Each
// message starts with the function or module, names the argument, what was expected and what
// was given (docs/reliability.md, "Bad inputs and what each gets"). Layer: above options/
// (FiniteCheck), below functional/.
//
// One argument order for every check: the checked value(s), then what they are checked against
// (a bound, a rank, a mode), then `fn` (the function or module), then the values' names in the
// order of the values: check_same_shape(a, b, fn, "a", "b"), check_at_least(v, min, fn, "v").

#include <patchgcl/compat.hpp>
#include <patchgcl/options/finite_check.hpp>

#include <cmath>
#include <string>

namespace patchgcl {

namespace detail {

inline std::string shape_str(const torch::Tensor& t) { return c10::str(t.sizes()); }

/// Floating-point, defined, non-empty tensor of rank `min_rank..max_rank`.
inline void check_floating(const torch::Tensor& t, int64_t min_rank, int64_t max_rank, const char* layout,
                           const char* fn, const char* name) {
  TORCH_CHECK(t.defined(), fn, ": `", name, "` is an undefined tensor");
  TORCH_CHECK(
      t.dim() >= min_rank && t.dim() <= max_rank, fn, ": `", name, "` must be ", layout, " (rank ",
      min_rank == max_rank ? std::to_string(min_rank) : std::to_string(min_rank) + " or " + std::to_string(max_rank),
      "), got shape ", shape_str(t));
  TORCH_CHECK(t.is_floating_point(), fn, ": `", name, "` must have a floating-point dtype, got ", t.scalar_type());
  TORCH_CHECK(t.numel() > 0, fn, ": `", name, "` is empty (shape ", shape_str(t), ")");
}

/// Node features: `[B, N, C]` or `[N, C]`.
inline void check_nodes(const torch::Tensor& t, const char* fn, const char* name) {
  check_floating(t, 2, 3, "[B, N, C] or [N, C]", fn, name);
}

/// Vectors along the last dimension: `[..., C]`, rank >= 1.
inline void check_vectors(const torch::Tensor& t, const char* fn, const char* name) {
  TORCH_CHECK(t.defined(), fn, ": `", name, "` is an undefined tensor");
  TORCH_CHECK(t.dim() >= 1, fn, ": `", name, "` must be [..., C] (rank >= 1), got shape ", shape_str(t));
  TORCH_CHECK(t.is_floating_point(), fn, ": `", name, "` must have a floating-point dtype, got ", t.scalar_type());
  TORCH_CHECK(t.numel() > 0, fn, ": `", name, "` is empty (shape ", shape_str(t), ")");
}

/// Feature maps: `[B, C, H, W]`.
inline void check_feature_map(const torch::Tensor& t, const char* fn, const char* name) {
  check_floating(t, 4, 4, "[B, C, H, W]", fn, name);
}

inline void check_same_shape(const torch::Tensor& a, const torch::Tensor& b, const char* fn, const char* a_name,
                             const char* b_name) {
  TORCH_CHECK(a.sizes() == b.sizes(), fn, ": `", a_name, "` and `", b_name, "` must have the same shape, got ",
              shape_str(a), " and ", shape_str(b));
}

inline void check_same_device(const torch::Tensor& a, const torch::Tensor& b, const char* fn, const char* a_name,
                              const char* b_name) {
  TORCH_CHECK(a.device() == b.device(), fn, ": `", a_name, "` is on ", a.device(), " but `", b_name, "` is on ",
              b.device(), "; move both to the same device");
}

/// Square adjacency `[B, N, N]` or `[N, N]` (any dtype: bool or 0/1 floats).
inline void check_adjacency(const torch::Tensor& a, const char* fn, const char* name) {
  TORCH_CHECK(a.defined(), fn, ": `", name, "` is an undefined tensor");
  TORCH_CHECK((a.dim() == 2 || a.dim() == 3) && a.size(-1) == a.size(-2), fn, ": `", name,
              "` must be a square [B, N, N] or [N, N] matrix, got shape ", shape_str(a));
  TORCH_CHECK(a.numel() > 0, fn, ": `", name, "` is empty (shape ", shape_str(a), ")");
}

/// The node dimension of an adjacency must match the node dimension of features.
inline void check_adjacency_matches(const torch::Tensor& adjacency, const torch::Tensor& nodes, const char* fn,
                                    const char* adj_name, const char* nodes_name) {
  const bool batched = nodes.dim() == 3;
  const bool ok =
      batched ? (adjacency.dim() == 3 && adjacency.size(0) == nodes.size(0) && adjacency.size(1) == nodes.size(1))
              : (adjacency.dim() == 2 && adjacency.size(0) == nodes.size(0));
  TORCH_CHECK(ok, fn, ": `", adj_name, "` must be ", batched ? "[B, N, N]" : "[N, N]", " for `", nodes_name,
              "` of shape ", shape_str(nodes), ", got ", shape_str(adjacency));
  check_same_device(adjacency, nodes, fn, adj_name, nodes_name);
}

/// Integer-valued scalars with a lower bound (counts, sizes, hops).
inline void check_at_least(int64_t value, int64_t min, const char* fn, const char* name) {
  TORCH_CHECK(value >= min, fn, ": `", name, "` must be >= ", min, ", got ", value);
}

/// Strictly positive, finite scalars (temperatures, epsilons).
inline void check_positive(double value, const char* fn, const char* name) {
  TORCH_CHECK(value > 0.0 && std::isfinite(value), fn, ": `", name, "` must be a finite value > 0, got ", value);
}

/// Finite scalars >= 0 (standard deviations, weights).
inline void check_non_negative(double value, const char* fn, const char* name) {
  TORCH_CHECK(value >= 0.0 && std::isfinite(value), fn, ": `", name, "` must be a finite value >= 0, got ", value);
}

/// Cosine thresholds of Eq. 1.
inline void check_cosine_threshold(double t, const char* fn, const char* name) {
  TORCH_CHECK(t >= -1.0 && t <= 1.0, fn, ": `", name, "` must be in [-1, 1] (a cosine), got ", t);
}

inline void check_same_dtype(const torch::Tensor& a, const torch::Tensor& b, const char* fn, const char* a_name,
                             const char* b_name) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), fn, ": `", a_name, "` and `", b_name,
              "` must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

/// Adjacency weights: bool, integer or floating point (complex has no order for Eq. 1's 0/1).
inline void check_adjacency_dtype(const torch::Tensor& a, const char* fn, const char* name) {
  TORCH_CHECK(!a.is_complex(), fn, ": `", name, "` must have a bool, integer or floating-point dtype, got ",
              a.scalar_type());
}

/// Location indices `[N]` into `locations` positions. The range is checked on the host for CPU
/// tensors only: on CUDA it would synchronise, and index_select raises a device-side error.
inline void check_indices(const torch::Tensor& ids, int64_t locations, const char* fn, const char* name) {
  TORCH_CHECK(ids.defined() && ids.dim() == 1 && ids.numel() > 0, fn, ": `", name,
              "` must be a non-empty 1-D index tensor [N], got ",
              ids.defined() ? shape_str(ids) : std::string("undefined"));
  TORCH_CHECK(!ids.is_floating_point() && !ids.is_complex() && ids.scalar_type() != torch::kBool, fn, ": `", name,
              "` must have an integer dtype, got ", ids.scalar_type());
  if (!ids.device().is_cpu()) return;
  const auto lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < locations, fn, ": `", name, "` must lie in [0, ", locations,
              ") (locations h * W + w of the map), got values in [", lo, ", ", hi, "]");
}

inline bool finite_check_active(FiniteCheck mode, const torch::Tensor& t) {
  return mode == FiniteCheck::kAlways || (mode == FiniteCheck::kAuto && t.device().is_cpu());
}

/// True when `t` holds no NaN and no Inf. One read of `t` through min/max (NaN propagates
/// through both, an infinity shows up as an extreme) instead of `isfinite(t).all()`, which
/// writes a mask as large as `t`: for the feature maps the losses scan, 3-4x less time.
/// LibTorch 1.13 has no CPU min/max for half/bfloat16; those keep the mask.
inline bool all_finite(const torch::Tensor& t) {
  if (t.is_cpu() && compat::is_reduced_float(t.scalar_type())) return torch::isfinite(t).all().item<bool>();
  // Both extremes to the host as double (exact for float and double, Inf and NaN kept).
  const auto extremes = torch::aminmax(t);
  return std::isfinite(std::get<0>(extremes).item<double>()) && std::isfinite(std::get<1>(extremes).item<double>());
}

/// Scans for NaN/Inf when `mode` says so (host synchronisation: see FiniteCheck).
inline void check_finite(const torch::Tensor& t, FiniteCheck mode, const char* fn, const char* name) {
  if (!finite_check_active(mode, t)) return;
  TORCH_CHECK(all_finite(t), fn, ": `", name, "` contains NaN or Inf (shape ", shape_str(t),
              "); set check_finite(FiniteCheck::kNever) to skip this scan");
}

/// Results computed from finite inputs that still came out NaN/Inf: an intermediate overflowed
/// the dtype (or a parameter is not finite). Scanned when `mode` says so, like the inputs.
inline void check_finite_result(const torch::Tensor& t, FiniteCheck mode, const char* fn, const char* what) {
  if (!finite_check_active(mode, t)) return;
  const bool finite =
      t.numel() == 1 && t.is_floating_point() ? std::isfinite(t.item<double>()) : torch::isfinite(t).all().item<bool>();
  TORCH_CHECK(finite, fn, ": the ", what, " is not finite although the inputs are: an intermediate overflowed ",
              t.scalar_type(), " (feature magnitudes too large, or temperature too small) or a parameter is NaN/Inf");
}

}  // namespace detail
}  // namespace patchgcl

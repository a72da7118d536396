// patchgcl::functional as ops with typed schemas: every option is an optional argument named as
// in C++ (enums by name, enums.hpp); an argument left None keeps the C++ default, so the defaults
// live in the C++ options structs only. Each calls the public C++ function, checks included.
// The kernels are opaque (CompositeExplicitAutograd): each differentiable op has an
// `<op>_backward(grad_outputs, <the op's arguments>)` op (BackwardOf), which
// python/patchgcl/_ops.py registers as its autograd, with a fake kernel for each op.
#include "autograd_kernel.hpp"
#include "enums.hpp"

#include <torch/library.h>
#include <patchgcl/patchgcl.hpp>

namespace patchgcl_python {
namespace {

namespace F = patchgcl::functional;
using c10::optional;
using Text = optional<std::string>;

patchgcl::FiniteCheck finite_check(Text value, const char* fn) {
  return value ? by_name(finite_check_names(), *value, fn, "check_finite") : patchgcl::FiniteCheck::kAuto;
}

/// `set(by_name(...))` when the enum argument `arg` was given.
template <typename E, typename Set>
void maybe_enum(Text value, const Names<E>& names, const char* fn, const char* arg, Set set) {
  if (value) set(by_name(names, *value, fn, arg));
}

at::Tensor cosine_adjacency(const at::Tensor& features, optional<double> threshold, Text comparison, Text diagonal,
                            optional<double> eps, optional<bool> normalize, Text check_finite) {
  constexpr const char* fn = "cosine_adjacency";
  patchgcl::CosineAdjacencyOptions o;
  if (threshold) o.threshold(*threshold);
  if (eps) o.eps(*eps);
  if (normalize) o.normalize(*normalize);
  maybe_enum(comparison, comparison_names(), fn, "comparison", [&](auto v) { o.comparison(v); });
  maybe_enum(diagonal, diagonal_names(), fn, "diagonal", [&](auto v) { o.diagonal(v); });
  o.check_finite(finite_check(check_finite, fn));
  return F::cosine_adjacency(features, o);
}

at::Tensor normalize_adjacency(const at::Tensor& adjacency, Text normalization, Text self_loops, Text check_finite) {
  constexpr const char* fn = "normalize_adjacency";
  patchgcl::NormalizeAdjacencyOptions o;
  maybe_enum(normalization, normalization_names(), fn, "normalization", [&](auto v) { o.normalization(v); });
  maybe_enum(self_loops, self_loops_names(), fn, "self_loops", [&](auto v) { o.self_loops(v); });
  o.check_finite(finite_check(check_finite, fn));
  return F::normalize_adjacency(adjacency, o);
}

at::Tensor info_nce(const at::Tensor& output, const at::Tensor& input, optional<double> temperature,
                    optional<double> diagonal_value, Text direction, Text negatives, Text pruning,
                    optional<int64_t> hard_negatives, Text reduction, Text check_finite) {
  constexpr const char* fn = "info_nce";
  patchgcl::InfoNCEOptions o;
  if (temperature) o.temperature(*temperature);
  if (diagonal_value) o.diagonal_value(*diagonal_value);
  if (hard_negatives) o.hard_negatives(*hard_negatives);
  maybe_enum(direction, direction_names(), fn, "direction", [&](auto v) { o.direction(v); });
  maybe_enum(negatives, negatives_names(), fn, "negatives", [&](auto v) { o.negatives(v); });
  maybe_enum(pruning, pruning_names(), fn, "pruning", [&](auto v) { o.pruning(v); });
  maybe_enum(reduction, reduction_names(), fn, "reduction", [&](auto v) { o.reduction(v); });
  o.check_finite(finite_check(check_finite, fn));
  return F::info_nce(output, input, o);
}

at::Tensor l2_normalize(const at::Tensor& x, optional<double> eps, Text mode, Text check_finite) {
  constexpr const char* fn = "l2_normalize";
  // None: F::l2_normalize's default arguments, eps 1e-12 and clamp
  return F::l2_normalize(x, eps ? *eps : 1e-12, mode ? by_name(l2_eps_names(), *mode, fn, "mode") : F::L2Eps::kClamp,
                         finite_check(check_finite, fn));
}

at::Tensor random_patch_ids(const at::Tensor& feature_map, int64_t num_patches) {
  return F::random_patch_ids(feature_map, num_patches);
}

at::Tensor sample_patches(const at::Tensor& feature_map, const at::Tensor& patch_ids, Text check_finite) {
  return F::sample_patches(feature_map, patch_ids, finite_check(check_finite, "sample_patches"));
}

at::Tensor hop_features(const at::Tensor& x, const at::Tensor& abar, int64_t hops, Text check_finite) {
  return F::hop_features(x, abar, hops, finite_check(check_finite, "hop_features"));
}

std::tuple<at::Tensor, at::Tensor> shared_hop_features(const at::Tensor& output, const at::Tensor& input,
                                                       const at::Tensor& abar, int64_t hops, Text check_finite) {
  auto r = F::shared_hop_features(output, input, abar, hops, finite_check(check_finite, "shared_hop_features"));
  return std::make_tuple(r.first, r.second);
}

at::Tensor normalized_laplacian(const at::Tensor& abar) { return F::normalized_laplacian(abar); }

std::tuple<at::Tensor, at::Tensor> laplacian_eigenvectors(const at::Tensor& abar, int64_t k, Text check_finite) {
  auto r = F::laplacian_eigenvectors(abar, k, finite_check(check_finite, "laplacian_eigenvectors"));
  return std::make_tuple(r.eigenvalues, r.eigenvectors);
}

}  // namespace
}  // namespace patchgcl_python

namespace patchgcl_python {
namespace {

/// "name(args) -> ret" -> "name_backward(Tensor?[] grad_outputs, args) -> Tensor[]".
std::string backward_schema(const std::string& schema) {
  const auto open = schema.find('('), close = schema.rfind(") ->");
  return schema.substr(0, open) + "_backward(Tensor?[] grad_outputs, " + schema.substr(open + 1, close - open - 1) +
         ") -> Tensor[]";
}

/// The schemas; `true`: differentiable, with a backward op.
const std::vector<std::pair<std::string, bool>>& schemas() {
  static const std::vector<std::pair<std::string, bool>> s{
      {"cosine_adjacency(Tensor features, *, float? threshold=None, str? comparison=None, str? diagonal=None, "
       "float? eps=None, bool? normalize=None, str? check_finite=None) -> Tensor",
       false},
      {"normalize_adjacency(Tensor adjacency, *, str? normalization=None, str? self_loops=None, "
       "str? check_finite=None) -> Tensor",
       true},
      {"info_nce(Tensor output, Tensor input, *, float? temperature=None, float? diagonal_value=None, "
       "str? direction=None, str? negatives=None, str? pruning=None, int? hard_negatives=None, str? reduction=None, "
       "str? check_finite=None) -> Tensor",
       true},
      {"l2_normalize(Tensor x, *, float? eps=None, str? mode=None, str? check_finite=None) -> Tensor", true},
      {"random_patch_ids(Tensor feature_map, int num_patches) -> Tensor", false},
      {"sample_patches(Tensor feature_map, Tensor patch_ids, *, str? check_finite=None) -> Tensor", true},
      {"hop_features(Tensor x, Tensor abar, int hops, *, str? check_finite=None) -> Tensor", true},
      {"shared_hop_features(Tensor output, Tensor input, Tensor abar, int hops, *, str? check_finite=None) "
       "-> (Tensor, Tensor)",
       true},
      {"normalized_laplacian(Tensor abar) -> Tensor", true},
      {"laplacian_eigenvectors(Tensor abar, int k, *, str? check_finite=None) -> (Tensor, Tensor)", true},
  };
  return s;
}

}  // namespace
}  // namespace patchgcl_python

TORCH_LIBRARY_FRAGMENT(patchgcl, m) {
  for (const auto& s : patchgcl_python::schemas()) {
    m.def(s.first.c_str());
    if (s.second) m.def(patchgcl_python::backward_schema(s.first).c_str());
  }
}

// The op, and its backward (BackwardOf) where it has one.
#define PATCHGCL_OP(name) m.impl(#name, TORCH_FN(name))
#define PATCHGCL_OP_AND_BACKWARD(name) \
  PATCHGCL_OP(name);                   \
  m.impl(#name "_backward", TORCH_FN((BackwardOf<decltype(name), &name>::call)))

TORCH_LIBRARY_IMPL(patchgcl, CompositeExplicitAutograd, m) {
  using namespace patchgcl_python;
  PATCHGCL_OP(cosine_adjacency);
  PATCHGCL_OP_AND_BACKWARD(normalize_adjacency);
  PATCHGCL_OP_AND_BACKWARD(info_nce);
  PATCHGCL_OP_AND_BACKWARD(l2_normalize);
  PATCHGCL_OP(random_patch_ids);
  PATCHGCL_OP_AND_BACKWARD(sample_patches);
  PATCHGCL_OP_AND_BACKWARD(hop_features);
  PATCHGCL_OP_AND_BACKWARD(shared_hop_features);
  PATCHGCL_OP_AND_BACKWARD(normalized_laplacian);
  PATCHGCL_OP_AND_BACKWARD(laplacian_eigenvectors);
}

// patchgcl::functional as ops. Each takes its tensors and one option string (what the caller
// gave, by the C++ option names; the rest keeps the C++ defaults) and calls the public C++
// function, checks included. CompositeImplicitAutograd: autograd traces the ATen ops inside.
#include "enums.hpp"
#include "loss_options.hpp"
#include "option_spec.hpp"

#include <torch/library.h>

namespace patchgcl_python {
namespace {

namespace F = patchgcl::functional;

patchgcl::FiniteCheck finite_check(OptionSpec& s) {
  return s.has("check_finite") ? s.choice("check_finite", finite_check_names()) : patchgcl::FiniteCheck::kAuto;
}

at::Tensor cosine_adjacency(const at::Tensor& features, const std::string& spec) {
  OptionSpec s(spec, "cosine_adjacency");
  patchgcl::CosineAdjacencyOptions o;
  s.maybe(
      "threshold", [&](const std::string& k) { return s.real(k); }, [&](double v) { o.threshold(v); });
  s.maybe(
      "eps", [&](const std::string& k) { return s.real(k); }, [&](double v) { o.eps(v); });
  s.maybe(
      "normalize", [&](const std::string& k) { return s.boolean(k); }, [&](bool v) { o.normalize(v); });
  if (s.has("comparison")) o.comparison(s.choice("comparison", comparison_names()));
  if (s.has("diagonal")) o.diagonal(s.choice("diagonal", diagonal_names()));
  o.check_finite(finite_check(s));
  s.check_all_used();
  return F::cosine_adjacency(features, o);
}

at::Tensor normalize_adjacency(const at::Tensor& adjacency, const std::string& spec) {
  OptionSpec s(spec, "normalize_adjacency");
  patchgcl::NormalizeAdjacencyOptions o;
  if (s.has("normalization")) o.normalization(s.choice("normalization", normalization_names()));
  if (s.has("self_loops")) o.self_loops(s.choice("self_loops", self_loops_names()));
  o.check_finite(finite_check(s));
  s.check_all_used();
  return F::normalize_adjacency(adjacency, o);
}

at::Tensor info_nce(const at::Tensor& output, const at::Tensor& input, const std::string& spec) {
  OptionSpec s(spec, "info_nce");
  patchgcl::InfoNCEOptions o;
  read_info_nce(s, o, "");
  s.check_all_used();
  return F::info_nce(output, input, o);
}

at::Tensor l2_normalize(const at::Tensor& x, const std::string& spec) {
  OptionSpec s(spec, "l2_normalize");
  const double eps = s.has("eps") ? s.real("eps") : 1e-12;
  const auto mode = s.has("mode") ? s.choice("mode", l2_eps_names()) : F::L2Eps::kClamp;
  const auto check = finite_check(s);
  s.check_all_used();
  return F::l2_normalize(x, eps, mode, check);
}

at::Tensor random_patch_ids(const at::Tensor& feature_map, int64_t num_patches) {
  return F::random_patch_ids(feature_map, num_patches);
}

at::Tensor sample_patches(const at::Tensor& feature_map, const at::Tensor& patch_ids, const std::string& spec) {
  OptionSpec s(spec, "sample_patches");
  const auto check = finite_check(s);
  s.check_all_used();
  return F::sample_patches(feature_map, patch_ids, check);
}

at::Tensor hop_features(const at::Tensor& x, const at::Tensor& abar, int64_t hops, const std::string& spec) {
  OptionSpec s(spec, "hop_features");
  const auto check = finite_check(s);
  s.check_all_used();
  return F::hop_features(x, abar, hops, check);
}

std::tuple<at::Tensor, at::Tensor> shared_hop_features(const at::Tensor& output, const at::Tensor& input,
                                                       const at::Tensor& abar, int64_t hops, const std::string& spec) {
  OptionSpec s(spec, "shared_hop_features");
  const auto check = finite_check(s);
  s.check_all_used();
  auto r = F::shared_hop_features(output, input, abar, hops, check);
  return std::make_tuple(r.first, r.second);
}

at::Tensor normalized_laplacian(const at::Tensor& abar) { return F::normalized_laplacian(abar); }

std::tuple<at::Tensor, at::Tensor> laplacian_eigenvectors(const at::Tensor& abar, int64_t k, const std::string& spec) {
  OptionSpec s(spec, "laplacian_eigenvectors");
  const auto check = finite_check(s);
  s.check_all_used();
  auto r = F::laplacian_eigenvectors(abar, k, check);
  return std::make_tuple(r.eigenvalues, r.eigenvectors);
}

}  // namespace
}  // namespace patchgcl_python

TORCH_LIBRARY_FRAGMENT(patchgcl, m) {
  m.def("cosine_adjacency(Tensor features, str options) -> Tensor");
  m.def("normalize_adjacency(Tensor adjacency, str options) -> Tensor");
  m.def("info_nce(Tensor output, Tensor input, str options) -> Tensor");
  m.def("l2_normalize(Tensor x, str options) -> Tensor");
  m.def("random_patch_ids(Tensor feature_map, int num_patches) -> Tensor");
  m.def("sample_patches(Tensor feature_map, Tensor patch_ids, str options) -> Tensor");
  m.def("hop_features(Tensor x, Tensor abar, int hops, str options) -> Tensor");
  m.def("shared_hop_features(Tensor output, Tensor input, Tensor abar, int hops, str options) -> (Tensor, Tensor)");
  m.def("normalized_laplacian(Tensor abar) -> Tensor");
  m.def("laplacian_eigenvectors(Tensor abar, int k, str options) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(patchgcl, CompositeImplicitAutograd, m) {
  using namespace patchgcl_python;
  m.impl("cosine_adjacency", TORCH_FN(cosine_adjacency));
  m.impl("normalize_adjacency", TORCH_FN(normalize_adjacency));
  m.impl("info_nce", TORCH_FN(info_nce));
  m.impl("l2_normalize", TORCH_FN(l2_normalize));
  m.impl("random_patch_ids", TORCH_FN(random_patch_ids));
  m.impl("sample_patches", TORCH_FN(sample_patches));
  m.impl("hop_features", TORCH_FN(hop_features));
  m.impl("shared_hop_features", TORCH_FN(shared_hop_features));
  m.impl("normalized_laplacian", TORCH_FN(normalized_laplacian));
  m.impl("laplacian_eigenvectors", TORCH_FN(laplacian_eigenvectors));
}

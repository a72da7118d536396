// The loss ops: `<loss>_parameters(options)` builds the C++ module (its own reset, so the
// initialisation is the C++ one) and returns its named parameters; `<loss>(options, parameters,
// output_features, input_features, patch_ids)` runs the C++ forward on the given parameters.
// CompositeImplicitAutograd: autograd records the ATen ops (and the library's own autograd
// functions) inside, for CPU and CUDA tensors alike.
#include "loss_options.hpp"
#include "module_cache.hpp"

#include <torch/library.h>

namespace patchgcl_python {
namespace {

std::tuple<std::vector<std::string>, std::vector<at::Tensor>> graph_nce_parameters(const std::string& spec) {
  patchgcl::GraphNCELossImpl module(graph_nce_options(spec));
  return named_parameters_of(module);
}

at::Tensor graph_nce_loss(const std::string& spec, const std::vector<at::Tensor>& parameters,
                          const std::vector<at::Tensor>& output_features, const std::vector<at::Tensor>& input_features,
                          const std::vector<at::Tensor>& patch_ids) {
  static ModuleCache<patchgcl::GraphNCELossImpl, patchgcl::GraphNCELossOptions> cache;
  return cache.run(spec, parameters, "GraphNCELoss", &graph_nce_options, [&](patchgcl::GraphNCELossImpl& m) {
    return m.forward(output_features, input_features, patch_ids);
  });
}

std::tuple<std::vector<std::string>, std::vector<at::Tensor>> patch_nce_parameters(const std::string& spec) {
  patchgcl::PatchNCELossImpl module(patch_nce_options(spec));
  return named_parameters_of(module);
}

at::Tensor patch_nce_loss(const std::string& spec, const std::vector<at::Tensor>& parameters,
                          const std::vector<at::Tensor>& output_features, const std::vector<at::Tensor>& input_features,
                          const std::vector<at::Tensor>& patch_ids) {
  static ModuleCache<patchgcl::PatchNCELossImpl, patchgcl::PatchNCELossOptions> cache;
  return cache.run(spec, parameters, "PatchNCELoss", &patch_nce_options, [&](patchgcl::PatchNCELossImpl& m) {
    return m.forward(output_features, input_features, patch_ids);
  });
}

std::string version() { return PATCHGCL_VERSION_STRING; }

}  // namespace
}  // namespace patchgcl_python

// The ops without a tensor argument are catch-all kernels (nothing to dispatch on).
TORCH_LIBRARY(patchgcl, m) {
  m.def("version() -> str", &patchgcl_python::version);
  m.def("graph_nce_parameters(str options) -> (str[], Tensor[])", &patchgcl_python::graph_nce_parameters);
  m.def(
      "graph_nce_loss(str options, Tensor[] parameters, Tensor[] output_features, Tensor[] input_features, "
      "Tensor[] patch_ids) -> Tensor");
  m.def("patch_nce_parameters(str options) -> (str[], Tensor[])", &patchgcl_python::patch_nce_parameters);
  m.def(
      "patch_nce_loss(str options, Tensor[] parameters, Tensor[] output_features, Tensor[] input_features, "
      "Tensor[] patch_ids) -> Tensor");
}

TORCH_LIBRARY_IMPL(patchgcl, CompositeImplicitAutograd, m) {
  m.impl("graph_nce_loss", TORCH_FN(patchgcl_python::graph_nce_loss));
  m.impl("patch_nce_loss", TORCH_FN(patchgcl_python::patch_nce_loss));
}

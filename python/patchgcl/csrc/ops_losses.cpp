// The loss classes and ops. `patchgcl.GraphNCELossModule(preset, in_channels)` (and
// PatchNCELossModule) holds the C++ module (loss_holder.hpp); the op
// `graph_nce_loss(module, parameters, output_features, input_features, patch_ids, num_patches,
// with_grads) -> (loss, parameter_grads, output_grads)` runs its forward, and with `with_grads`
// its backward too, on the tensors given. The kernel is opaque to autograd and to torch.compile:
// python/patchgcl/_ops.py registers its autograd (the saved gradients times the loss's gradient)
// and its fake kernel (shapes only), so that a compiled graph calls it as one op.
#include "loss_holder.hpp"

#include <torch/library.h>

namespace patchgcl_python {
namespace {

struct GraphNCELossModule : LossHolder<patchgcl::GraphNCELossImpl, patchgcl::GraphNCELossOptions> {
  GraphNCELossModule(const std::string& preset, std::vector<int64_t> in_channels)
      : LossHolder(graph_nce_preset(preset, in_channels), graph_nce_table(), "GraphNCELoss", preset, in_channels) {}
};

struct PatchNCELossModule : LossHolder<patchgcl::PatchNCELossImpl, patchgcl::PatchNCELossOptions> {
  PatchNCELossModule(const std::string& preset, std::vector<int64_t> in_channels)
      : LossHolder(patch_nce_preset(preset, in_channels), patch_nce_table(), "PatchNCELoss", preset, in_channels) {}
};

/// The class `name` with its typed option setters, build, option_names, and what torch.compile
/// asks of a custom class: __obj_flatten__ (fake_class_registry), __eq__ (its caches' keys) and
/// pickling (the graph cache; copy.deepcopy of the Python module too).
template <typename H>
void define_class(torch::Library& m, const char* name) {
  using Self = const c10::intrusive_ptr<H>&;
  m.class_<H>(name)
      .def(torch::init<std::string, std::vector<int64_t>>())
      .def("set_int", [](Self h, const std::string& k, int64_t v) { h->set(k, v); })
      .def("set_float", [](Self h, const std::string& k, double v) { h->set(k, v); })
      .def("set_bool", [](Self h, const std::string& k, bool v) { h->set(k, v); })
      .def("set_str", [](Self h, const std::string& k, const std::string& v) { h->set(k, v); })
      .def("set_ints", [](Self h, const std::string& k, std::vector<int64_t> v) { h->set(k, v); })
      .def("set_floats", [](Self h, const std::string& k, std::vector<double> v) { h->set(k, v); })
      .def("build", [](Self h) { return h->build(); })
      .def("option_names", [](Self h) { return h->option_names(); })
      .def("__obj_flatten__", [](Self h) { return h->obj_flatten(); })
      .def("__eq__", [](Self h, Self other) { return h.get() == other.get(); })  // the same module
      .def_pickle([](Self h) { return h->recipe(); }, [](Recipe recipe) { return H::template rebuild<H>(recipe); });
}

template <typename H>
LossAndGrads run(const c10::intrusive_ptr<H>& module, const Tensors& parameters, const Tensors& output_features,
                 const Tensors& input_features, const Tensors& patch_ids, c10::optional<int64_t> num_patches,
                 bool with_grads) {
  return module->run(parameters, output_features, input_features, patch_ids, num_patches, with_grads);
}

std::string version() { return PATCHGCL_VERSION_STRING; }

}  // namespace
}  // namespace patchgcl_python

TORCH_LIBRARY(patchgcl, m) {
  using namespace patchgcl_python;
  define_class<GraphNCELossModule>(m, "GraphNCELossModule");
  define_class<PatchNCELossModule>(m, "PatchNCELossModule");
  m.def("version() -> str", &version);
  const std::string arguments =
      "Tensor[] parameters, Tensor[] output_features, Tensor[] input_features, Tensor[] patch_ids, "
      "int? num_patches, bool with_grads) -> (Tensor loss, Tensor[] parameter_grads, Tensor[] output_grads)";
  m.def(("graph_nce_loss(__torch__.torch.classes.patchgcl.GraphNCELossModule module, " + arguments).c_str());
  m.def(("patch_nce_loss(__torch__.torch.classes.patchgcl.PatchNCELossModule module, " + arguments).c_str());
}

TORCH_LIBRARY_IMPL(patchgcl, CompositeExplicitAutograd, m) {
  using namespace patchgcl_python;
  m.impl("graph_nce_loss", TORCH_FN(run<GraphNCELossModule>));
  m.impl("patch_nce_loss", TORCH_FN(run<PatchNCELossModule>));
}

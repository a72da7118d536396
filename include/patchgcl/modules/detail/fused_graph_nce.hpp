#pragma once

// GraphNCELoss (Eq. 1-10) over all layers at once, as one autograd node with a written-out
// backward. After the embedding heads every layer's graphs have `nc` features and `N` nodes, so
// the adjacency (Eq. 1), its normalisation, the hop products (Eq. 2-3, 7-8), the L2
// normalisations, InfoNCE (Eq. 4, 9) and top-K pooling (Eq. 5-6) of every layer, image and of
// both graphs (output G(x), input x) run as one batched computation
// (fused_graph_nce_forward.hpp, fused_graph_nce_backward.hpp). The autograd graph of the whole
// loss is one node: at the paper setting a forward + backward dispatches 556 ops instead of
// 1,163 (docs/benchmarks.md, "Ops per call"; a GPU launches each). Used by modules/graph_nce.hpp
// only.

#include <patchgcl/modules/detail/fused_graph_nce_backward.hpp>
#include <patchgcl/modules/detail/fused_graph_nce_config.hpp>
#include <patchgcl/modules/detail/fused_graph_nce_forward.hpp>

#include <cstddef>
#include <utility>
#include <vector>

namespace patchgcl {
namespace detail {

/// A setting as an autograd context stores it (`saved_data` holds IValues: numbers, lists).
template <typename T>
c10::IValue setting_value(const T& value) {
  return value;
}
inline c10::IValue setting_value(ScoreActivation value) { return static_cast<int64_t>(value); }

/// A setting read back from its IValue.
inline void read_setting(const c10::IValue& v, int64_t& out) { out = v.toInt(); }
inline void read_setting(const c10::IValue& v, double& out) { out = v.toDouble(); }
inline void read_setting(const c10::IValue& v, bool& out) { out = v.toBool(); }
inline void read_setting(const c10::IValue& v, std::vector<int64_t>& out) { out = v.toIntVector(); }
inline void read_setting(const c10::IValue& v, std::vector<double>& out) { out = v.toDoubleVector(); }
inline void read_setting(const c10::IValue& v, ScoreActivation& out) { out = static_cast<ScoreActivation>(v.toInt()); }

/// The settings into `ctx->saved_data`, one named entry per field (`visit_settings`).
inline void save_settings(torch::autograd::AutogradContext* ctx, const FusedGraphNCESettings& settings) {
  visit_settings(settings, [&](const char* name, const auto& value) { ctx->saved_data[name] = setting_value(value); });
}

/// The settings `save_settings` stored.
inline FusedGraphNCESettings load_settings(torch::autograd::AutogradContext* ctx) {
  FusedGraphNCESettings settings;
  visit_settings(settings, [&](const char* name, auto& value) { read_setting(ctx->saved_data.at(name), value); });
  return settings;
}

/// The saved tensors through save_for_backward (freed after the backward unless retain_graph),
/// as one list; the size of every group goes into `saved_data`.
inline void save_tensors(torch::autograd::AutogradContext* ctx, FusedGraphNCESaved& saved) {
  std::vector<torch::Tensor> all;
  std::vector<int64_t> sizes;
  for (const auto* group : saved.groups()) {
    sizes.push_back(static_cast<int64_t>(group->size()));
    all.insert(all.end(), group->begin(), group->end());
  }
  ctx->saved_data["group_sizes"] = sizes;
  ctx->save_for_backward(all);
}

/// The tensors `save_tensors` stored, in their groups.
inline FusedGraphNCESaved load_tensors(torch::autograd::AutogradContext* ctx) {
  FusedGraphNCESaved saved;
  const auto all = ctx->get_saved_variables();
  const auto sizes = ctx->saved_data.at("group_sizes").toIntVector();
  size_t at = 0, i = 0;
  for (auto* group : saved.groups()) {
    const auto size = static_cast<size_t>(sizes[i++]);
    group->assign(all.begin() + static_cast<std::ptrdiff_t>(at), all.begin() + static_cast<std::ptrdiff_t>(at + size));
    at += size;
  }
  return saved;
}

/// `fused_graph_nce` as one autograd node. Inputs that take gradients: G(x)'s maps (`maps_out`)
/// and the parameters (`params`); x's maps are InfoNCE's detached side. The backward is
/// `fused_graph_nce_backward`; gradients of gradients are not available (it is not
/// differentiable).
struct FusedGraphNCE : public torch::autograd::Function<FusedGraphNCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::TensorList maps_out,
                               const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                               torch::TensorList params, const FusedGraphNCEConfig& config) {
    FusedGraphNCESaved saved;
    auto loss = fused_graph_nce(config, maps_out, maps_in, ids, params, &saved, nullptr);
    saved.ids = ids;
    // The parameters the backward multiplies with (read after the forward, before any update).
    saved.weights = fused_backward_weights(config, params);
    save_settings(ctx, config);
    save_tensors(ctx, saved);
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "GraphNCELoss: gradients of gradients (backward with create_graph) are not supported");
    const auto settings = load_settings(ctx);
    const auto saved = load_tensors(ctx);
    // needs_input_grad counts the tensor inputs only: the maps, then the parameters.
    std::vector<bool> needs(static_cast<size_t>(settings.layers * (1 + settings.params_per_layer())));
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = ctx->needs_input_grad(i);
    return fused_graph_nce_backward(settings, saved, std::move(needs), grads[0]);
  }
};

}  // namespace detail
}  // namespace patchgcl

#pragma once

// CUT's PatchNCE (PatchNCELoss with its MLP head, no pruning) over all layers at once, as one
// autograd node with a written-out backward: per layer one product per head Linear for both
// images' patches, then the unit rows and InfoNCE of every layer and image as one batched
// computation. Used by modules/patch_nce.hpp only.

#include <patchgcl/modules/detail/fused_ops.hpp>

#include <vector>

namespace patchgcl {
namespace detail {

/// What the fused PatchNCE needs of the options and the inputs' shapes.
struct FusedPatchNCEConfig {
  int64_t layers = 0, batch = 0, patches = 0;  ///< L, B, N
  double tau = 1.0, fill = 0.0;                ///< temperature and `diagonal_value / tau`
  bool rows = true, cols = false, whole_batch = false;
  double l2_eps = 1e-7;
};

/// The loss on checked inputs; `params` per layer: `mlp_l.0.weight`, `.0.bias`, `.2.weight`,
/// `.2.bias`. `saved` (when given) receives, in order: per layer the G(x) rows `[B N, C_l]` and
/// their hidden layer `[B N, nc]`; the unit rows' out, inv, c (output side);
/// then what batched_info_nce keeps.
inline torch::Tensor fused_patch_nce(const FusedPatchNCEConfig& o, torch::TensorList maps_out,
                                     const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                                     torch::TensorList params, std::vector<torch::Tensor>* saved) {
  const int64_t L = o.layers, B = o.batch, N = o.patches;
  const int64_t D = params[2].size(0);
  const bool keep = saved != nullptr;
  auto projected = torch::empty({L, B, 2, N, D}, params[0].options());
  for (int64_t l = 0; l < L; ++l) {
    const int64_t C = params[4 * l].size(1);
    auto sampled = sample_both(maps_out[l], maps_in[l], ids[l]);  // [C, B, 2, N]
    auto hidden = torch::empty({B, 2, N, D}, projected.options());
    linear_into(hidden.view({2 * B * N, D}), sampled.view({C, 2 * B * N}).t(), params[4 * l], params[4 * l + 1]);
    hidden.relu_();
    linear_into(projected.select(0, l).view({2 * B * N, D}), hidden.view({2 * B * N, D}), params[4 * l + 2],
                params[4 * l + 3]);
    // G(x)'s rows only (copies: x's halves of the buffers are freed).
    if (keep)
      saved->insert(saved->end(), {sampled.select(2, 0).reshape({C, B * N}).contiguous().t(),
                                   hidden.select(1, 0).reshape({B * N, D}).contiguous()});
  }
  auto unit = unit_rows(projected, o.l2_eps, keep, functional::L2Eps::kAdd);
  if (keep) saved->insert(saved->end(), {unit.out.select(2, 0), unit.inv.select(2, 0), unit.c.select(2, 0)});
  const auto side = [&](int64_t s) {
    return o.whole_batch ? unit.out.select(2, s).reshape({L, B * N, D}) : unit.out.select(2, s).view({L * B, N, D});
  };
  auto nce = batched_info_nce(side(0), side(1), L, o.tau, o.fill, o.rows, o.cols, keep);
  if (keep) saved->insert(saved->end(), nce.saved.begin(), nce.saved.end());
  return nce.per_layer.mean();
}

/// `fused_patch_nce` as one autograd node (inputs that take gradients: G(x)'s maps and the
/// head's parameters). Backward: InfoNCE as in `batched_info_nce_backward`, the unit rows
/// (`x / (||x|| + eps)`), then per layer `dW_2 = dE^T H`, `dH = dE W_2` masked by `H > 0`
/// (ReLU), `dW_1 = dH^T X`, `dX = dH W_1` added into a zero map at the ids. Not differentiable
/// twice.
struct FusedPatchNCE : public torch::autograd::Function<FusedPatchNCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::TensorList maps_out,
                               const std::vector<torch::Tensor>& maps_in, const std::vector<torch::Tensor>& ids,
                               torch::TensorList params, const FusedPatchNCEConfig& config) {
    std::vector<torch::Tensor> saved;
    auto loss = fused_patch_nce(config, maps_out, maps_in, ids, params, &saved);
    auto& d = ctx->saved_data;
    d["sizes"] = std::vector<int64_t>{config.layers, config.batch, config.patches,
                                      config.rows,   config.cols,  static_cast<int64_t>(params.size())};
    d["tau"] = config.tau;
    std::vector<int64_t> shapes;
    for (const auto& map : maps_out)
      for (auto size : map.sizes()) shapes.push_back(size);
    d["map_shapes"] = shapes;
    // One list through save_for_backward (freed after the backward unless retain_graph).
    d["counts"] = std::vector<int64_t>{static_cast<int64_t>(saved.size()), static_cast<int64_t>(ids.size())};
    saved.insert(saved.end(), ids.begin(), ids.end());
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "PatchNCELoss: gradients of gradients (backward with create_graph) are not supported");
    auto& d = ctx->saved_data;
    const auto sizes = d["sizes"].toIntVector();
    const int64_t L = sizes[0], B = sizes[1], N = sizes[2], num_params = sizes[5];
    const bool rows = sizes[3], cols = sizes[4];
    const double tau = d["tau"].toDouble();
    const auto shapes = d["map_shapes"].toIntVector();
    const auto all = ctx->get_saved_variables();
    const auto counts = d["counts"].toIntVector();
    const std::vector<torch::Tensor> saved(all.begin(), all.begin() + counts[0]);
    const std::vector<torch::Tensor> ids(all.begin() + counts[0], all.begin() + counts[0] + counts[1]);
    const std::vector<torch::Tensor> params(all.begin() + counts[0] + counts[1], all.end());
    const int64_t D = params[2].size(0);
    // Inputs: L maps, maps_in, ids, the parameters, config (the non-tensor ones get none).
    torch::autograd::variable_list result(L + num_params + 3);

    const auto* unit = &saved[2 * L];
    auto dv =
        batched_info_nce_backward(&saved[2 * L + 3], rows, cols, grads[0] / (static_cast<double>(L * B * N) * tau));
    auto de = unit_rows_backward(unit[0], unit[1], unit[2], dv.view({L, B, N, D})).view({L, B * N, D});
    auto db2 = de.sum(1);
    for (int64_t l = 0; l < L; ++l) {
      const auto& x = saved[2 * l];           // [B N, C]
      const auto& hidden = saved[2 * l + 1];  // [B N, nc]
      auto de_l = de.select(0, l);
      result[L + 2 + 4 * l + 2] = torch::mm(de_l.t(), hidden);
      result[L + 2 + 4 * l + 3] = db2.select(0, l);
      auto dh = torch::mm(de_l, params[4 * l + 2]).mul_(hidden.gt(0));
      result[L + 2 + 4 * l] = torch::mm(dh.t(), x);
      result[L + 2 + 4 * l + 1] = dh.sum(0);
      if (!ctx->needs_input_grad(l)) continue;
      std::vector<int64_t> map_shape(shapes.begin() + 4 * l, shapes.begin() + 4 * l + 4);
      result[l] = scatter_patches(map_shape, torch::mm(dh, params[4 * l]), ids[l]);
    }
    return result;
  }
};

}  // namespace detail
}  // namespace patchgcl

#pragma once

// The pieces the losses' fused autograd nodes (fused_graph_nce.hpp, fused_patch_nce.hpp) share:
// products into preallocated slices, patches gathered and scattered, unit rows, and InfoNCE over
// a batch of graph pairs with its written-out backward (the last two computed by functional/'s
// detail functions). No autograd here: the callers run them inside
// torch::autograd::Function::forward / backward. Used by modules/detail/ only.

#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/normalize.hpp>

#include <vector>

namespace patchgcl {
namespace detail {

/// `out = x W^T (+ b)` into a preallocated slice (`bias` may be undefined).
inline void linear_into(torch::Tensor out, const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  if (bias.defined()) at::addmm_out(out, bias, x, weight.t());
  else at::mm_out(out, x, weight.t());
}

/// `out = src.gather(dim, index)` into a preallocated (possibly strided) `out`.
inline void gather_into(torch::Tensor out, const torch::Tensor& src, int64_t dim, const torch::Tensor& index) {
  at::gather_out(out, src, dim, index);
}

/// The patches of both images of layer `l` at `ids` (`[N]` int64), as the columns of one
/// `[C, B, 2, N]` buffer (image, graph: 0 the output G(x), 1 the input x, patch): its
/// `view({C, 2 B N}).t()` are the rows of one product with the layer's head for both graphs.
inline torch::Tensor sample_both(const torch::Tensor& map_out, const torch::Tensor& map_in, const torch::Tensor& ids) {
  const int64_t B = map_out.size(0), C = map_out.size(1), N = ids.size(0);
  auto index = ids.view({1, 1, N}).expand({B, C, N});
  auto sampled = torch::empty({C, B, 2, N}, map_out.options().requires_grad(false));
  gather_into(sampled.select(2, 0).transpose(0, 1), map_out.reshape({B, C, -1}), 2, index);
  gather_into(sampled.select(2, 1).transpose(0, 1), map_in.reshape({B, C, -1}), 2, index);
  return sampled;
}

/// The gradient of a `[B, C, H, W]` map of `numel` elements from `d_rows` (`[B N, C]`, the
/// gradient of its patches at `ids`): zeros with the rows added at their locations.
inline torch::Tensor scatter_patches(std::vector<int64_t> map_shape, const torch::Tensor& d_rows,
                                     const torch::Tensor& ids) {
  const int64_t B = map_shape[0], C = map_shape[1], N = ids.size(0);
  auto dmap = torch::zeros(map_shape, d_rows.options());
  dmap.view({B, C, -1}).scatter_add_(2, ids.view({1, 1, N}).expand({B, C, N}), d_rows.view({B, N, C}).transpose(1, 2));
  return dmap;
}

// Unit rows and their backward (functional::detail::unit_rows, functional/normalize.hpp).
using functional::detail::unit_rows;
using functional::detail::unit_rows_backward;
using functional::detail::UnitRows;

/// InfoNCE (functional::detail::similarity_nce) of `G` graph pairs at once: `v`, `z` `[G, m, D]`,
/// the output graphs' nodes against the input graphs' (rows: output to input; columns: input
/// to output). `per_layer` is the mean over anchors of each of `layers` equal groups of pairs
/// (`[layers]`); `saved` (when `keep`) is what `batched_info_nce_backward` reads: z, then e and
/// sum of the rows' and/or the columns' normalisers.
struct BatchedNCE {
  torch::Tensor per_layer;
  std::vector<torch::Tensor> saved;
};

inline BatchedNCE batched_info_nce(const torch::Tensor& v, const torch::Tensor& z, int64_t layers, double tau,
                                   double fill, bool rows, bool cols, bool keep) {
  auto nce = functional::detail::similarity_nce(v, z, tau, fill, rows, cols);
  BatchedNCE out;
  out.per_layer = nce.per_anchor.view({layers, -1}).mean(-1);
  if (keep) {
    out.saved.push_back(z);
    for (const auto* n : {&nce.rows, &nce.cols})
      if (n->e.defined()) out.saved.insert(out.saved.end(), {n->e, n->sum});
  }
  return out;
}

/// `dV` of `batched_info_nce` (`[G, m, D]`) for the upstream gradient `scale` of every anchor's
/// loss divided by `tau` (a 0-dim tensor): functional::detail::similarity_nce_backward.
inline torch::Tensor batched_info_nce_backward(const torch::Tensor* saved, bool rows, bool cols,
                                               const torch::Tensor& scale) {
  functional::detail::Normaliser r, c;
  if (rows) r = {saved[1], saved[2], {}};
  if (cols) c = {saved[rows ? 3 : 1], saved[rows ? 4 : 2], {}};
  return functional::detail::similarity_nce_backward(saved[0], r, c, scale);
}

}  // namespace detail
}  // namespace patchgcl

#pragma once

// The pieces the losses' fused autograd nodes (fused_graph_nce.hpp, fused_patch_nce.hpp) share:
// products into preallocated slices, unit rows with the factors of their backward, and InfoNCE
// over a batch of graph pairs with its written-out backward. No autograd here: the callers run
// them inside torch::autograd::Function::forward / backward. Used by modules/detail/ only.

#include <patchgcl/functional/normalize.hpp>

#include <cmath>
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

/// Unit rows `x / max(||x||, eps)` or `x / (||x|| + eps)` (functional::l2_normalize's arithmetic)
/// and the factors of its backward `dx = (g - out (out . g) c) inv` (functional::detail::L2Normalize).
struct UnitRows {
  torch::Tensor out, inv, c;
};

inline UnitRows unit_rows(const torch::Tensor& x, double eps, bool for_backward,
                          functional::L2Eps mode = functional::L2Eps::kClamp) {
  auto r = functional::detail::scaled_forward(x, eps, mode);
  UnitRows u{r.out, {}, {}};
  if (for_backward) {
    const auto dtype = r.norm.scalar_type();
    u.inv = r.scale.reciprocal().div_(r.denom).mul_(r.norm.gt(0).to(dtype));
    u.c = mode == functional::L2Eps::kClamp
              ? r.norm.ge(r.denom).to(dtype)
              : torch::where(r.norm > 0, r.denom / r.norm, torch::zeros({}, r.norm.options()));
  }
  return u;
}

/// The backward of `unit_rows` from its factors (or a slice of them) and the gradient `g`.
inline torch::Tensor unit_rows_backward(const torch::Tensor& out, const torch::Tensor& inv, const torch::Tensor& c,
                                        const torch::Tensor& g) {
  auto dot = (out * g).sum(-1, /*keepdim=*/true).mul_(c);
  return torch::addcmul(g, out, dot, -1).mul_(inv);
}

/// One direction of InfoNCE's normaliser over `dim` of the logits, with what its backward
/// reuses: `lse = log(sum exp(S) + exp(fill))`, computed as `m + log(sum)` with
/// `m = max(max S, fill)`, `e = exp(S - m)` and `sum = sum e + exp(fill - m)`; the softmax the
/// backward needs is `e / sum` (no second exponential).
struct Normaliser {
  torch::Tensor e, sum, lse;
};

inline Normaliser normaliser(const torch::Tensor& logits, int64_t dim, double fill) {
  auto m = logits.amax(dim, /*keepdim=*/true);
  const bool with_fill = std::isfinite(fill);
  if (with_fill) m.clamp_min_(fill);
  Normaliser r;
  r.e = (logits - m).exp_();
  r.sum = r.e.sum(dim, /*keepdim=*/true);
  if (with_fill) r.sum.add_((fill - m).exp_());
  r.lse = r.sum.log().add_(m);
  return r;
}

/// InfoNCE (Eq. 4 / 9, CUT's PatchNCE) of `G` graph pairs at once: `v`, `z` `[G, m, D]`, the
/// output graphs' nodes against the input graphs' (rows: output to input; columns: input to
/// output), `S = V Z^T / tau`, per anchor `lse - S_ii` per direction. `per_layer` is the mean
/// over anchors of each of `layers` equal groups of pairs (`[layers]`); `saved` (when `keep`)
/// is what `batched_info_nce_backward` reads: z, then e and sum of the rows and/or columns.
struct BatchedNCE {
  torch::Tensor per_layer;
  std::vector<torch::Tensor> saved;
};

inline BatchedNCE batched_info_nce(const torch::Tensor& v, const torch::Tensor& z, int64_t layers, double tau,
                                   double fill, bool rows, bool cols, bool keep) {
  const int64_t graphs = v.size(0), m = v.size(1);
  auto logits = torch::bmm(v, z.transpose(1, 2)).div_(tau);
  BatchedNCE out;
  torch::Tensor per_anchor;
  if (keep) out.saved.push_back(z);
  for (int64_t dim : {-1, -2}) {
    if (!(dim == -1 ? rows : cols)) continue;
    auto r = normaliser(logits, dim, fill);
    per_anchor = per_anchor.defined() ? per_anchor + r.lse.view({graphs, m}) : r.lse.view({graphs, m});
    if (keep) out.saved.insert(out.saved.end(), {r.e, r.sum});
  }
  per_anchor = per_anchor.sub(logits.diagonal(0, -2, -1), static_cast<double>(rows + cols));
  out.per_layer = per_anchor.view({layers, -1}).mean(-1);
  return out;
}

/// `dV` of `batched_info_nce` (`[G, m, D]`) for the upstream gradient `scale` of every anchor's
/// loss divided by `tau` (a 0-dim tensor): `(softmax_rows(S) + softmax_cols(S) - directions I) Z scale`.
inline torch::Tensor batched_info_nce_backward(const torch::Tensor* saved, bool rows, bool cols,
                                               const torch::Tensor& scale) {
  auto ds = saved[1] / saved[2];
  if (rows && cols) ds.addcdiv_(saved[3], saved[4]);
  ds.diagonal(0, -2, -1).sub_(static_cast<double>(rows + cols));
  return torch::bmm(ds, saved[0]).mul_(scale);
}

}  // namespace detail
}  // namespace patchgcl

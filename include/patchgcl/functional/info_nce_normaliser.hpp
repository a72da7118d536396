#pragma once

// The normaliser of InfoNCE (the log of Eq. 4's denominator; CUT's PatchNCE cross-entropy) over
// one direction of a similarity matrix, and its backward. Every InfoNCE of the library takes its
// logsumexps from here: info_nce, global_info_nce and the losses' fused nodes.

#include <patchgcl/compat.hpp>

#include <cmath>

namespace patchgcl {
namespace functional {
namespace detail {

/// One direction of InfoNCE's normaliser over `dim` of the logits `S`, with the extra negative
/// `fill` (`diagonal_value / tau`; -infinity: none):
///   lse = log(sum_j exp(S_j) + exp(fill)) = m + log(sum),
///   m = max(max_j S_j, fill),   e_j = exp(S_j - m),   sum = sum_j e_j + exp(fill - m).
/// `e` has the logits' shape, `sum` and `lse` keep `dim` with size 1. The softmax the backward
/// needs is `e / sum` (`normaliser_backward`): the forward's exponential, reused.
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

/// Replaces `n.lse` by `lse_total`, the normaliser of a larger set of terms that includes `n`'s
/// (global_info_nce's columns: the queries of every process, and the extra negative), and
/// rebases `n.sum` to it so that `e / sum` is still the softmax, now over the larger set:
///   sum_total = sum * exp(lse_total - lse),   e_j / sum_total = exp(S_j - lse_total).
/// (`sum_total` overflows to infinity only where every `e_j / sum_total` of the column is below
/// float32's smallest normal number; the softmax is then 0.)
inline void rebase(Normaliser& n, const torch::Tensor& lse_total) {
  n.sum = n.sum * (lse_total - n.lse).exp_();
  n.lse = lse_total;
}

/// `e / sum`, times `grad` unless undefined.
inline torch::Tensor softmax_times(const Normaliser& n, const torch::Tensor& grad) {
  auto softmax = n.e / n.sum;
  return grad.defined() ? softmax.mul_(grad) : softmax;
}

/// The backward of InfoNCE's normalisers with respect to the logits: for the upstream gradient
/// `grad_d` of each direction's `lse` (broadcast to the logits' shape; undefined: 1),
///   dS = sum over the directions d of softmax_d * grad_d,   softmax_d = e_d / sum_d.
/// A direction whose `e` is undefined is not taken. The positives' term (minus the directions'
/// gradients on the diagonal) is the caller's: only it knows where its positives lie.
inline torch::Tensor normaliser_backward(const Normaliser& a, const torch::Tensor& grad_a, const Normaliser& b,
                                         const torch::Tensor& grad_b) {
  if (!a.e.defined()) return softmax_times(b, grad_b);
  auto ds = softmax_times(a, grad_a);
  if (!b.e.defined()) return ds;
  return grad_b.defined() ? ds.add_(softmax_times(b, grad_b)) : ds.addcdiv_(b.e, b.sum);
}

}  // namespace detail
}  // namespace functional
}  // namespace patchgcl

#pragma once

// The hop features `Abar^l X` of Eq. 2-3, computed by repeated products (never `Abar^l`).

#include <patchgcl/detail/checks.hpp>

#include <utility>
#include <vector>

namespace patchgcl {
namespace functional {
namespace detail_tag_conv {

/// `Abar [Xq | Xk]` in one product, differentiable in `Xq` only. Autograd through a
/// concatenation would also back-propagate the (unused) key half: this backward computes
/// `Abar^T dXq` alone.
struct SharedPropagation : public torch::autograd::Function<SharedPropagation> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& abar,
                                                const torch::Tensor& query, const torch::Tensor& key) {
    ctx->save_for_backward({abar});
    const int64_t c = query.size(-1);
    auto both = torch::matmul(abar, torch::cat({query, key}, -1));
    auto out_key = both.narrow(-1, c, key.size(-1)).contiguous();
    ctx->mark_non_differentiable({out_key});
    return {both.narrow(-1, 0, c).contiguous(), out_key};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto abar = ctx->get_saved_variables()[0];
    return {torch::Tensor(), torch::matmul(abar.transpose(-1, -2), grads[0]), torch::Tensor()};
  }
};

}  // namespace detail_tag_conv

/// `[X, Abar X, ..., Abar^L X]` concatenated along channels: `[.., N, (L+1) C]`.
inline torch::Tensor hop_features(const torch::Tensor& x, const torch::Tensor& abar, int64_t hops) {
  std::vector<torch::Tensor> stack{x};
  for (int64_t l = 1; l <= hops; ++l) stack.push_back(torch::matmul(abar, stack.back()));
  return hops == 0 ? x : torch::cat(stack, -1);
}

/// Hop features of two graphs that share `Abar` (the output graph `query`, differentiable, and
/// the input graph `key`, detached), one product per hop for both.
inline std::pair<torch::Tensor, torch::Tensor> shared_hop_features(const torch::Tensor& query, const torch::Tensor& key,
                                                                   const torch::Tensor& abar, int64_t hops) {
  std::vector<torch::Tensor> q{query}, k{key.detach()};
  auto abar_const = abar.detach();
  for (int64_t l = 1; l <= hops; ++l) {
    auto next = detail_tag_conv::SharedPropagation::apply(abar_const, q.back(), k.back());
    q.push_back(next[0]);
    k.push_back(next[1]);
  }
  if (hops == 0) return {query, key.detach()};
  return {torch::cat(q, -1), torch::cat(k, -1)};
}

}  // namespace functional
}  // namespace patchgcl

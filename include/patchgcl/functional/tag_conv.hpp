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

/// Node features `x` and a normalised adjacency `abar` of the same graph(s), dtype and device.
inline void check_hop_inputs(const torch::Tensor& x, const char* x_name, const torch::Tensor& abar, int64_t hops,
                             FiniteCheck check_finite, const char* fn) {
  detail::check_nodes(x, fn, x_name);
  detail::check_adjacency(abar, fn, "abar");
  detail::check_adjacency_matches(abar, "abar", x, x_name, fn);
  detail::check_same_dtype(x, x_name, abar, "abar", fn);
  detail::check_at_least(hops, 0, fn, "hops");
  detail::check_finite(x, check_finite, fn, x_name);
  detail::check_finite(abar, check_finite, fn, "abar");
}

}  // namespace detail_tag_conv

/// `[X, Abar X, ..., Abar^L X]` concatenated along channels: `[.., N, (L+1) C]`. `x` is
/// `[B, N, C]` or `[N, C]`, `abar` `[B, N, N]` or `[N, N]` of the same floating dtype; half and
/// bfloat16 are propagated in float32 and returned in their dtype.
/// `check_finite`: NaN/Inf scan of both (see FiniteCheck).
inline torch::Tensor hop_features(const torch::Tensor& x, const torch::Tensor& abar, int64_t hops,
                                  FiniteCheck check_finite = FiniteCheck::kAuto) {
  detail_tag_conv::check_hop_inputs(x, "x", abar, hops, check_finite, "hop_features");
  if (hops == 0) return x;
  std::vector<torch::Tensor> stack{detail::compute_precision(x)};
  const auto a = detail::compute_precision(abar);
  for (int64_t l = 1; l <= hops; ++l) stack.push_back(torch::matmul(a, stack.back()));
  auto out = torch::cat(stack, -1);
  return out.scalar_type() == x.scalar_type() ? out : out.to(x.scalar_type());
}

/// Hop features of two graphs that share `Abar` (the output graph `query`, differentiable, and
/// the input graph `key`, detached), one product per hop for both. `query` and `key` have the
/// same shape, dtype and device.
inline std::pair<torch::Tensor, torch::Tensor> shared_hop_features(const torch::Tensor& query, const torch::Tensor& key,
                                                                   const torch::Tensor& abar, int64_t hops,
                                                                   FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "shared_hop_features";
  detail_tag_conv::check_hop_inputs(query, "query", abar, hops, check_finite, fn);
  TORCH_CHECK(key.defined(), fn, ": `key` is an undefined tensor");
  detail::check_same_shape(query, "query", key, "key", fn);
  detail::check_same_device(query, "query", key, "key", fn);
  detail::check_same_dtype(query, "query", key, "key", fn);
  detail::check_finite(key, check_finite, fn, "key");
  const auto dtype = query.scalar_type();
  if (compat::is_reduced_float(dtype)) {  // propagated in float32, returned in the inputs' dtype
    auto out = shared_hop_features(query.to(torch::kFloat32), key.to(torch::kFloat32), abar.to(torch::kFloat32), hops,
                                   FiniteCheck::kNever);
    return {out.first.to(dtype), out.second.to(dtype)};
  }
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

#pragma once

// TAGConv (Eq. 2-3) as functions: the hop features `Abar^l X`, computed by repeated products
// (never `Abar^l`), and `Z = sum_l Abar^l X W_l + b` through one linear map of them. The module
// (modules/tag_conv.hpp) holds the weights and calls these.

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>

#include <utility>
#include <vector>

namespace patchgcl {
namespace functional {
namespace detail {

/// `C = A B` into the preallocated (possibly column-sliced) `out`, batched or not.
inline void matmul_into(torch::Tensor out, const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() == 3) at::bmm_out(out, a, b);
  else at::mm_out(out, a, b);
}

/// `[X, Abar X, ..., Abar^L X]` written hop by hop into one `[.., N, (L+1) C]` buffer (no
/// concatenation, no temporaries). Without gradient, or with `x` requiring it through
/// `HopStack` below.
inline torch::Tensor stack_hops(const torch::Tensor& abar, const torch::Tensor& x, int64_t hops) {
  const int64_t c = x.size(-1);
  auto sizes = x.sizes().vec();
  sizes.back() = (hops + 1) * c;
  auto out = torch::empty(sizes, x.options());
  out.narrow(-1, 0, c).copy_(x);
  for (int64_t l = 1; l <= hops; ++l) matmul_into(out.narrow(-1, l * c, c), abar, out.narrow(-1, (l - 1) * c, c));
  return out;
}

/// The gradient of `stack_hops` in `x` from the gradient `dh` (`[.., N, (L+1) C]`) of its output,
/// by Horner's scheme, one product per hop: dX = dH_0 + Abar^T (dH_1 + Abar^T (dH_2 + ...)).
/// `abar_t` is `Abar^T`; for `hops` 0 the result is a view of `dh`.
inline torch::Tensor stack_hops_backward(const torch::Tensor& abar_t, const torch::Tensor& dh, int64_t hops,
                                         int64_t c) {
  auto dx = dh.narrow(-1, hops * c, c);
  for (int64_t l = hops - 1; l >= 0; --l) {
    auto term = dh.narrow(-1, l * c, c);
    dx = abar_t.dim() == 3 ? torch::baddbmm(term, abar_t, dx) : torch::addmm(term, abar_t, dx);
  }
  return dx;
}

/// `stack_hops` differentiable in `x` (`abar` is a constant: it is built from the detached
/// input graph), its backward `stack_hops_backward`.
struct HopStack : public torch::autograd::Function<HopStack> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& abar, const torch::Tensor& x,
                               int64_t hops) {
    ctx->save_for_backward({abar});
    ctx->saved_data["hops"] = hops;
    ctx->saved_data["channels"] = x.size(-1);
    return stack_hops(abar, x, hops);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto abar_t = ctx->get_saved_variables()[0].transpose(-1, -2);
    const int64_t hops = ctx->saved_data["hops"].toInt(), c = ctx->saved_data["channels"].toInt();
    auto dx = stack_hops_backward(abar_t, grads[0], hops, c);
    return {torch::Tensor(), hops == 0 ? dx.clone() : dx, torch::Tensor()};
  }
};

/// Node features `x` and a normalised adjacency `abar` of the same graph(s), dtype and device.
inline void check_hop_inputs(const torch::Tensor& x, const char* x_name, const torch::Tensor& abar, int64_t hops,
                             FiniteCheck check_finite, const char* fn) {
  patchgcl::detail::check_nodes(x, fn, x_name);
  patchgcl::detail::check_adjacency(abar, fn, "abar");
  patchgcl::detail::check_adjacency_matches(abar, x, fn, "abar", x_name);
  patchgcl::detail::check_same_dtype(x, abar, fn, x_name, "abar");
  patchgcl::detail::check_at_least(hops, 0, fn, "hops");
  patchgcl::detail::check_finite(x, check_finite, fn, x_name);
  patchgcl::detail::check_finite(abar, check_finite, fn, "abar");
}

/// `hop_features` on checked arguments.
inline torch::Tensor hop_features(const torch::Tensor& x, const torch::Tensor& abar, int64_t hops) {
  if (hops == 0) return x;
  const auto xc = patchgcl::detail::compute_precision(x);
  const auto a = patchgcl::detail::compute_precision(abar);
  const bool grad = torch::GradMode::is_enabled();
  torch::Tensor out;
  if (grad && a.requires_grad()) {  // a learnt adjacency: plain autograd through every product
    std::vector<torch::Tensor> stack{xc};
    for (int64_t l = 1; l <= hops; ++l) stack.push_back(torch::matmul(a, stack.back()));
    out = torch::cat(stack, -1);
  } else {
    out = grad && xc.requires_grad() ? HopStack::apply(a, xc, hops) : stack_hops(a, xc.detach(), hops);
  }
  return out.scalar_type() == x.scalar_type() ? out : out.to(x.scalar_type());
}

/// `shared_hop_features` on checked arguments.
inline std::pair<torch::Tensor, torch::Tensor> shared_hop_features(const torch::Tensor& output,
                                                                   const torch::Tensor& input,
                                                                   const torch::Tensor& abar, int64_t hops) {
  const auto dtype = output.scalar_type();
  if (compat::is_reduced_float(dtype)) {  // propagated in float32, returned in the inputs' dtype
    auto out =
        shared_hop_features(output.to(torch::kFloat32), input.to(torch::kFloat32), abar.to(torch::kFloat32), hops);
    return {out.first.to(dtype), out.second.to(dtype)};
  }
  if (hops == 0) return {output, input.detach()};
  const auto abar_const = abar.detach();
  auto v = torch::GradMode::is_enabled() && output.requires_grad() ? HopStack::apply(abar_const, output, hops)
                                                                   : stack_hops(abar_const, output.detach(), hops);
  torch::NoGradGuard no_grad;
  return {v, stack_hops(abar_const, input.detach(), hops)};
}

/// The second graph of `shared_hop_features` and `TAGConv::forward_shared` (`input`) against the
/// first (`output`): defined, same shape and device (and dtype when `same_dtype`: the module
/// converts dtypes itself), finite when `mode` says so. One place for both callers' checks.
inline void check_shared_input(const torch::Tensor& output, const torch::Tensor& input, FiniteCheck mode,
                               bool same_dtype, const char* fn) {
  TORCH_CHECK(input.defined(), fn, ": `input` is an undefined tensor");
  patchgcl::detail::check_same_shape(output, input, fn, "output", "input");
  patchgcl::detail::check_same_device(output, input, fn, "output", "input");
  if (same_dtype) patchgcl::detail::check_same_dtype(output, input, fn, "output", "input");
  patchgcl::detail::check_finite(input, mode, fn, "input");
}

/// The weights of `tag_conv` for nodes `x` (`[.., C_in]`, named `x_name`): `weight`
/// `[C_out, (hops + 1) C_in]`, `bias` `[C_out]` or undefined, both of `x`'s dtype and device.
inline void check_tag_conv_weights(const torch::Tensor& x, const char* x_name, const torch::Tensor& weight,
                                   const torch::Tensor& bias, int64_t hops, const char* fn) {
  const int64_t columns = (hops + 1) * x.size(-1);
  TORCH_CHECK(weight.defined(), fn, ": `weight` is an undefined tensor");
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == columns, fn,
              ": `weight` must be [C_out, (hops + 1) C_in] = [C_out, ", columns, "], got shape ",
              patchgcl::detail::shape_str(weight));
  patchgcl::detail::check_same_dtype(x, weight, fn, x_name, "weight");
  patchgcl::detail::check_same_device(x, weight, fn, x_name, "weight");
  if (!bias.defined()) return;
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), fn, ": `bias` must be [C_out] = [", weight.size(0),
              "] or undefined, got shape ", patchgcl::detail::shape_str(bias));
  patchgcl::detail::check_same_dtype(x, bias, fn, x_name, "bias");
  patchgcl::detail::check_same_device(x, bias, fn, x_name, "bias");
}

/// Eq. 2-3 on checked arguments: `Z = sum_{l=0..L} Abar^l X W_l + b` (`L = hops`) as one linear
/// map of the hop features, `weight` = `[W_0^T | ... | W_L^T]`, `bias` = `b` (undefined: none).
/// `abar` is taken in `x`'s dtype.
inline torch::Tensor tag_conv(const torch::Tensor& x, const torch::Tensor& abar, const torch::Tensor& weight,
                              const torch::Tensor& bias, int64_t hops) {
  return torch::nn::functional::linear(hop_features(x, abar.to(x.scalar_type()), hops), weight, bias);
}

/// Eq. 3 and Eq. 2 on checked arguments: `(V, Z)`, the output graph (`output`, differentiable)
/// and the input graph (`input`, detached: no autograd graph, its linear map included) through
/// one `Abar` and the same weights. `abar` is taken in `output`'s dtype.
inline std::pair<torch::Tensor, torch::Tensor> shared_tag_conv(const torch::Tensor& output, const torch::Tensor& input,
                                                               const torch::Tensor& abar, const torch::Tensor& weight,
                                                               const torch::Tensor& bias, int64_t hops) {
  auto stacked = shared_hop_features(output, input, abar.to(output.scalar_type()), hops);
  torch::Tensor input_out;
  {
    torch::NoGradGuard no_grad;
    input_out = torch::nn::functional::linear(stacked.second, weight, bias);
  }
  return {torch::nn::functional::linear(stacked.first, weight, bias), input_out};
}

}  // namespace detail

/// `[X, Abar X, ..., Abar^L X]` concatenated along channels: `[.., N, (L+1) C]`. `x` is
/// `[B, N, C]` or `[N, C]`, `abar` `[B, N, N]` or `[N, N]` of the same floating dtype; half and
/// bfloat16 are propagated in float32 and returned in their dtype.
/// `check_finite`: NaN/Inf scan of both (see FiniteCheck).
inline torch::Tensor hop_features(const torch::Tensor& x, const torch::Tensor& abar, int64_t hops,
                                  FiniteCheck check_finite = FiniteCheck::kAuto) {
  detail::check_hop_inputs(x, "x", abar, hops, check_finite, "hop_features");
  return detail::hop_features(x, abar, hops);
}

/// Hop features of two graphs that share `Abar` (a constant here), each written hop by hop into
/// one buffer: the output graph (`output`, G(x)'s nodes `V`, differentiable) and the input graph
/// (`input`, x's nodes `Z`, detached). `output` and `input` have the same shape, dtype and device.
inline std::pair<torch::Tensor, torch::Tensor> shared_hop_features(const torch::Tensor& output,
                                                                   const torch::Tensor& input,
                                                                   const torch::Tensor& abar, int64_t hops,
                                                                   FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "shared_hop_features";
  detail::check_hop_inputs(output, "output", abar, hops, check_finite, fn);
  detail::check_shared_input(output, input, check_finite, /*same_dtype=*/true, fn);
  return detail::shared_hop_features(output, input, abar, hops);
}

/// Topology Adaptive Graph Convolution (Du et al. 2017), Eq. 2-3, as a function:
///
///   Z = sum_{l=0..L} Abar^l X W_l + b,   L = hops
///
/// `x` and `abar` as in `hop_features`; `weight` is `[C_out, (L+1) C_in]` = `[W_0^T | ... | W_L^T]`
/// (DGL's layout: `TAGConv`'s `lin->weight`), `bias` `[C_out]` or undefined (no `b`), both of
/// `x`'s dtype and device. `check_finite`: NaN/Inf scan of `x` and `abar` (see FiniteCheck).
///
///   auto Z = functional::tag_conv(X, Abar, conv->lin->weight, conv->lin->bias, 2);
inline torch::Tensor tag_conv(const torch::Tensor& x, const torch::Tensor& abar, const torch::Tensor& weight,
                              const torch::Tensor& bias, int64_t hops, FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "tag_conv";
  detail::check_hop_inputs(x, "x", abar, hops, check_finite, fn);
  detail::check_tag_conv_weights(x, "x", weight, bias, hops, fn);
  return detail::tag_conv(x, abar, weight, bias, hops);
}

/// `tag_conv` of two graphs that share `Abar` and the weights (Eq. 3 and Eq. 2): `(V, Z)`, the
/// output graph (`output`, G(x)'s nodes, differentiable) and the input graph (`input`, x's nodes,
/// detached), as `shared_hop_features` propagates them. `output` and `input` have the same
/// shape, dtype and device.
///
///   auto [V, Z] = functional::shared_tag_conv(F_o, F_i, Abar, conv->lin->weight, conv->lin->bias, 2);
inline std::pair<torch::Tensor, torch::Tensor> shared_tag_conv(const torch::Tensor& output, const torch::Tensor& input,
                                                               const torch::Tensor& abar, const torch::Tensor& weight,
                                                               const torch::Tensor& bias, int64_t hops,
                                                               FiniteCheck check_finite = FiniteCheck::kAuto) {
  constexpr const char* fn = "shared_tag_conv";
  detail::check_hop_inputs(output, "output", abar, hops, check_finite, fn);
  detail::check_shared_input(output, input, check_finite, /*same_dtype=*/true, fn);
  detail::check_tag_conv_weights(output, "output", weight, bias, hops, fn);
  return detail::shared_tag_conv(output, input, abar, weight, bias, hops);
}

}  // namespace functional
}  // namespace patchgcl

#pragma once
// Autograd inside an op's kernel: the C++ functions record their ATen ops (and the library's own
// autograd functions) as they do in C++, and torch::autograd::grad differentiates them. Used by
// the loss ops (forward and backward in one call) and by the `<op>_backward` ops of the
// functional ops (BackwardOf).
#include <ATen/core/List.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace patchgcl_python {

/// A kernel that an Autograd kernel calls runs below the Autograd dispatch keys; this guard lets
/// them through again, with grad mode on.
struct EnableAutogradInKernel {
  static c10::impl::LocalDispatchKeySet keys() {
    auto tls = c10::impl::tls_local_dispatch_key_set();
    tls.excluded_ = tls.excluded_ - c10::autograd_dispatch_keyset_with_ADInplaceOrView;
    return tls;
  }
  c10::impl::ForceDispatchKeyGuard dispatch{keys()};
  at::AutoGradMode grad{true};
};

/// d outputs / d inputs as `grad`s: contiguous, aliasing nothing, zeros where an input does not
/// reach the outputs (`allow_unused`).
inline std::vector<at::Tensor> gradients(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& inputs,
                                         const std::vector<at::Tensor>& grad_outputs) {
  auto grads = torch::autograd::grad(outputs, inputs, grad_outputs, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
  for (size_t i = 0; i < grads.size(); ++i)
    grads[i] = grads[i].defined() ? grads[i].clone(at::MemoryFormat::Contiguous)
                                  : at::zeros(inputs[i].sizes(), inputs[i].options());
  return grads;
}

inline std::vector<at::Tensor> as_list(const at::Tensor& t) { return {t}; }
inline std::vector<at::Tensor> as_list(const std::tuple<at::Tensor, at::Tensor>& t) {
  return {std::get<0>(t), std::get<1>(t)};
}

/// The backward of a functional op `F(Args...)`: `call(grad_outputs, args...)` runs F again with
/// autograd on the floating-point tensor arguments and returns one tensor per tensor argument:
/// its gradient for a floating-point one (zeros where it has none), an empty float tensor for
/// any other (patch ids). A None in `grad_outputs` is an output that got no gradient.
template <typename Sig, Sig* F>
struct BackwardOf;

template <typename R, typename... Args, R (*F)(Args...)>
struct BackwardOf<R(Args...), F> {
  static std::vector<at::Tensor> call(const c10::List<c10::optional<at::Tensor>>& grad_outputs, Args... args) {
    EnableAutogradInKernel autograd;
    std::vector<at::Tensor> inputs, leaves;
    auto leaf = [&](auto&& a) -> std::decay_t<decltype(a)> {
      if constexpr (std::is_same<std::decay_t<decltype(a)>, at::Tensor>::value) {
        inputs.push_back(a);
        if (!a.is_floating_point()) return a;
        leaves.push_back(a.detach().requires_grad_());
        return leaves.back();
      } else {
        return a;
      }
    };
    std::tuple<std::decay_t<Args>...> traced{leaf(args)...};  // braces: left to right
    const auto outputs = as_list(std::apply(F, traced));
    std::vector<at::Tensor> differentiable, seeds;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const c10::optional<at::Tensor> g = grad_outputs.get(i);
      if (g && g->defined() && outputs[i].requires_grad()) {
        differentiable.push_back(outputs[i]);
        seeds.push_back(*g);
      }
    }
    std::vector<at::Tensor> grads;
    if (!differentiable.empty()) grads = gradients(differentiable, leaves, seeds);
    std::vector<at::Tensor> result;
    size_t next = 0;
    for (const auto& input : inputs) {
      if (!input.is_floating_point()) {
        result.push_back(at::empty({0}, input.options().dtype(at::kFloat)));
      } else {
        result.push_back(grads.empty() ? at::zeros(input.sizes(), input.options()) : grads[next]);
        ++next;
      }
    }
    return result;
  }
};

}  // namespace patchgcl_python

#pragma once

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/tag_conv.hpp>
#include <patchgcl/options/tag_conv.hpp>

#include <ostream>
#include <utility>

namespace patchgcl {

/// Topology Adaptive Graph Convolution (Du et al. 2017), Eq. 2-3 of the paper:
///
///   Z = sum_{l=0..L} Abar^l X W_l + b
///
/// `X` are node features `[B, N, C_in]` or `[N, C_in]`, `Abar` the normalised adjacency
/// (`functional::normalize_adjacency`) `[B, N, N]` or `[N, N]`, `L = hops`. The weights are
/// stored as DGL stores them, one `Linear((L+1) C_in, C_out)` named `lin` whose weight is
/// `[W_0^T | W_1^T | ... | W_L^T]`; `hop_weight(l)` returns `W_l` (`[C_in, C_out]`). The
/// computation is `functional::tag_conv` with these weights.
///
///   TAGConv conv(TAGConvOptions(256, 256).hops(2));
///   auto Z = conv(X, functional::normalize_adjacency(A));
class TAGConvImpl : public torch::nn::Cloneable<TAGConvImpl> {
 public:
  TAGConvImpl(int64_t in_channels, int64_t out_channels) : TAGConvImpl(TAGConvOptions(in_channels, out_channels)) {}
  explicit TAGConvImpl(const TAGConvOptions& options_) : options(options_) { reset(); }

  void reset() override {
    TORCH_CHECK(options.in_channels() >= 1 && options.out_channels() >= 1,
                "TAGConv: `in_channels` and `out_channels` must be >= 1, got ", options.in_channels(), " and ",
                options.out_channels());
    detail::check_at_least(options.hops(), 0, "TAGConv", "hops");
    detail::check_non_negative(options.init_std(), "TAGConv", "init_std");
    lin = register_module(
        "lin",
        torch::nn::Linear(torch::nn::LinearOptions((options.hops() + 1) * options.in_channels(), options.out_channels())
                              .bias(options.bias())));
    reset_parameters();
  }

  void reset_parameters() {
    torch::NoGradGuard no_grad;
    lin->weight.normal_(0.0, options.init_std());
    if (options.bias()) lin->bias.zero_();
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "patchgcl::TAGConv(" << options.in_channels() << ", " << options.out_channels()
           << ", hops=" << options.hops() << ", bias=" << std::boolalpha << options.bias() << ")";
  }

  /// `Z` for one graph (or one graph per batch entry).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& abar) {
    check_inputs(x, "x", abar);
    auto nodes = detail::to_parameter_dtype(x, lin->weight, "TAGConv", "x");
    return functional::detail::tag_conv(nodes, abar, lin->weight, lin->bias, options.hops());
  }

  /// `(V, Z)` of Eq. 3 and Eq. 2: the output graph (`output`, G(x)'s nodes, differentiable) and
  /// the input graph (`input`, x's nodes, detached: InfoNCE's other side) through the same `Abar`
  /// and weights (`functional::shared_tag_conv`; the input side records no autograd graph).
  std::pair<torch::Tensor, torch::Tensor> forward_shared(const torch::Tensor& output, const torch::Tensor& input,
                                                         const torch::Tensor& abar) {
    check_inputs(output, "output", abar);
    functional::detail::check_shared_input(output, input, options.check_finite(), /*same_dtype=*/false, "TAGConv");
    auto v = detail::to_parameter_dtype(output, lin->weight, "TAGConv", "output");
    auto z = detail::to_parameter_dtype(input, lin->weight, "TAGConv", "input");
    return functional::detail::shared_tag_conv(v, z, abar, lin->weight, lin->bias, options.hops());
  }

  /// `W_l` of Eq. 2, `[C_in, C_out]` (a view of `lin->weight`).
  torch::Tensor hop_weight(int64_t l) const {
    TORCH_CHECK(l >= 0 && l <= options.hops(), "TAGConv::hop_weight: `l` must be in [0, ", options.hops(), "], got ",
                l);
    return lin->weight.narrow(1, l * options.in_channels(), options.in_channels()).t();
  }

  TAGConvOptions options;
  torch::nn::Linear lin{nullptr};

 private:
  void check_inputs(const torch::Tensor& x, const char* name, const torch::Tensor& abar) const {
    detail::check_nodes(x, "TAGConv", name);
    TORCH_CHECK(x.size(-1) == options.in_channels(), "TAGConv: `", name, "` must have ", options.in_channels(),
                " channels (last dimension), got shape ", detail::shape_str(x));
    detail::check_adjacency(abar, "TAGConv", "abar");
    detail::check_adjacency_dtype(abar, "TAGConv", "abar");
    detail::check_adjacency_matches(abar, x, "TAGConv", "abar", name);
    detail::check_finite(x, options.check_finite(), "TAGConv", name);
    if (abar.is_floating_point()) detail::check_finite(abar, options.check_finite(), "TAGConv", "abar");
  }
};
TORCH_MODULE(TAGConv);

}  // namespace patchgcl

#pragma once

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/global_info_nce.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/modules/detail/fused_patch_nce.hpp>
#include <patchgcl/modules/detail/layers.hpp>
#include <patchgcl/options/patch_nce.hpp>

#include <string>
#include <vector>

namespace patchgcl {

/// CUT's PatchNCE loss (Park et al., ECCV 2020) with its projection head, and PUT's pruned
/// variant (`PatchNCELossOptions::put`).
///
/// Per layer l: `num_patches` locations shared by both images are sampled, each feature goes
/// through `mlp_l = Linear(C_l, nc) -> ReLU -> Linear(nc, nc)` and `x / (||x|| + 1e-7)`, and
/// `functional::info_nce(output = G(x)'s, input = x's)` (CUT's queries and keys, the input side
/// detached) is taken; the result is
/// the mean over layers. With the MLP head and without pruning, `forward` runs every layer as one
/// batched computation in one autograd node (detail::FusedPatchNCE, written-out backward, not
/// differentiable twice); otherwise layer by layer. The head's parameters are created at construction and named as in
/// CUT's PatchSampleF (`mlp_0.0.weight`, `mlp_0.2.weight`, ...).
///
///   PatchNCELoss nce(PatchNCELossOptions({3, 128, 256, 256, 256}));
///   auto loss = nce(encoder(G(x)), encoder(x));
class PatchNCELossImpl : public torch::nn::Cloneable<PatchNCELossImpl> {
 public:
  explicit PatchNCELossImpl(std::vector<int64_t> in_channels)
      : PatchNCELossImpl(PatchNCELossOptions(std::move(in_channels))) {}
  explicit PatchNCELossImpl(const PatchNCELossOptions& options_) : options(options_) { reset(); }

  void reset() override {
    detail::check_loss_options(options, "PatchNCELoss");
    mlps.clear();
    if (!options.use_mlp()) return;
    for (size_t l = 0; l < options.in_channels().size(); ++l) {
      auto mlp = torch::nn::Sequential(torch::nn::Linear(options.in_channels()[l], options.nc()), torch::nn::ReLU(),
                                       torch::nn::Linear(options.nc(), options.nc()));
      mlps.push_back(register_module("mlp_" + std::to_string(l), mlp));
    }
    reset_parameters();
  }

  void reset_parameters() {
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
      if (p.key().find("bias") != std::string::npos) p.value().zero_();
      else p.value().normal_(0.0, options.init_std());
    }
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "patchgcl::PatchNCELoss(layers=" << options.in_channels().size()
           << ", num_patches=" << options.num_patches() << ", nc=" << options.nc()
           << ", tau=" << options.info_nce().temperature() << ")";
  }

  /// The loss of `output_features` (G(x)'s feature maps, CUT's queries) against
  /// `input_features` (x's, CUT's keys), one `[B, C_l, H_l, W_l]` map per layer. `patch_ids`
  /// (one `[N]` int64 tensor per layer) fixes the sampled locations; by default they are drawn.
  torch::Tensor forward(const std::vector<torch::Tensor>& output_features,
                        const std::vector<torch::Tensor>& input_features,
                        const std::vector<torch::Tensor>& patch_ids = {}) {
    constexpr const char* fn = "PatchNCELoss";
    if (options.use_mlp() && detail::fused_layers_apply(options, output_features, input_features, patch_ids,
                                                        mlps[0]->ptr<torch::nn::LinearImpl>(0)->weight)) {
      auto ids = detail::checked_patch_ids(fn, options, output_features, input_features, patch_ids);
      auto loss = fused_loss(output_features, input_features, ids);
      detail::check_finite_result(loss, options.check_finite(), fn, "loss");
      return loss;
    }
    return detail::mean_over_layers(
        fn, options, output_features, input_features, patch_ids,
        [&](size_t l, const torch::Tensor& output, const torch::Tensor& input) {
          torch::Tensor z;
          {
            torch::NoGradGuard no_grad;  // CUT detaches the input side: its head output needs no graph
            z = head(l, input, "input_features");
          }
          auto v = head(l, output, "output_features");
          return detail::contrast(v, z, options);
        });
  }

  /// Head + normalisation of sampled nodes `[B, N, C_l]` (or `[N, C_l]`) of layer `l`.
  torch::Tensor project(size_t l, const torch::Tensor& nodes, const char* name = "nodes") {
    constexpr const char* fn = "PatchNCELoss::project";
    detail::check_layer_index(l, options.in_channels().size(), fn);
    detail::check_nodes(nodes, fn, name);
    detail::check_layer_channels(nodes, l, options.in_channels()[l], fn, name);
    return head(l, nodes, name);
  }

  PatchNCELossOptions options;
  std::vector<torch::nn::Sequential> mlps;

 private:
  /// All layers at once (detail::FusedPatchNCE) on checked arguments: CUT's head, no pruning.
  torch::Tensor fused_loss(const std::vector<torch::Tensor>& output_features,
                           const std::vector<torch::Tensor>& input_features, const std::vector<torch::Tensor>& ids) {
    const auto& nce = options.info_nce();
    detail::FusedPatchNCEConfig config;
    config.layers = static_cast<int64_t>(ids.size());
    config.batch = output_features[0].size(0);
    config.patches = ids[0].size(0);
    config.tau = nce.temperature();
    const auto dtype = mlps[0]->ptr<torch::nn::LinearImpl>(0)->weight.scalar_type();
    config.fill = functional::detail::scaled_diagonal_value(dtype, config.tau, nce.diagonal_value(), "info_nce");
    config.rows = nce.direction() != Direction::kInputToOutput;
    config.cols = nce.direction() != Direction::kOutputToInput;
    config.whole_batch = nce.negatives() == Negatives::kWholeBatch;
    config.l2_eps = options.l2_eps();
    std::vector<torch::Tensor> params, long_ids;
    for (size_t l = 0; l < ids.size(); ++l) {
      long_ids.push_back(ids[l].to(torch::kLong));
      for (int64_t i : {0, 2}) {
        auto& linear = *mlps[l]->ptr<torch::nn::LinearImpl>(i);
        params.push_back(linear.weight);
        params.push_back(linear.bias);
      }
    }
    if (!torch::GradMode::is_enabled())
      return detail::fused_patch_nce(config, output_features, input_features, long_ids, params, nullptr);
    return detail::FusedPatchNCE::apply(torch::TensorList(output_features), input_features, long_ids,
                                        torch::TensorList(params), config);
  }

  /// `project` on checked nodes.
  torch::Tensor head(size_t l, const torch::Tensor& nodes, const char* name) {
    auto x = nodes;
    if (options.use_mlp()) {
      auto& first = mlps[l]->ptr<torch::nn::LinearImpl>(0)->weight;
      x = mlps[l]->forward(detail::to_parameter_dtype(x, first, "PatchNCELoss", name));
    } else {
      x = detail::compute_precision(x);
    }
    return functional::detail::l2_normalize(x, options.l2_eps(), functional::L2Eps::kAdd);
  }
};
TORCH_MODULE(PatchNCELoss);

}  // namespace patchgcl

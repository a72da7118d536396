#pragma once

#include <patchgcl/detail/checks.hpp>
#include <patchgcl/detail/numeric.hpp>
#include <patchgcl/functional/adjacency.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/functional/tag_conv.hpp>
#include <patchgcl/functional/topk_pool.hpp>
#include <patchgcl/modules/detail/fused_graph_nce.hpp>
#include <patchgcl/modules/detail/layers.hpp>
#include <patchgcl/modules/graph_inspection.hpp>
#include <patchgcl/modules/tag_conv.hpp>
#include <patchgcl/modules/topk_pool.hpp>
#include <patchgcl/options/graph_nce.hpp>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace patchgcl {

/// The patch-wise graph contrastive loss of PatchGCL (Jung, Kwon & Ye, AAAI 2024), Eq. 1-10.
///
/// Per feature layer l, with `N = num_patches` locations shared by the input x and the output G(x):
///  1. sampled features go through the embedding head `h_l` (`embed_l`, Linear(C_l, nc) + L2);
///  2. `A` = Eq. 1 on the input's embedded nodes (no gradient), `Abar` = normalised `A`;
///  3. one TAGConv (`gnn_l`, Eq. 2-3, `hops`) + L2 gives `V` (the output graph, G(x)'s nodes)
///     and `Z` (the input graph, x's nodes, detached), through the shared `Abar`;
///  4. InfoNCE between corresponding nodes `v_i`, `z_i` (Eq. 4), weighted by `level_weights[0]`;
///  5. for each pooling level p = 1..P: `pools_l[p-1]` (TopKPool, Eq. 5-6) keeps
///     `n_p = max(2, floor(n_{p-1} / (down_scale 2^(p-1))))` of the previous level's `n_{p-1}`
///     nodes (`n_0 = N`) of both graphs, `gnn_pools_l[p-1]` (TAGConv,
///     `pooled_hops`, Eq. 7-8) + L2, InfoNCE (Eq. 9) weighted by `level_weights[p]`;
///  6. the layer's weighted sum, divided by `P + 1` when `average_levels`.
/// The loss is the mean over layers. `forward` computes steps 1-6 of every layer, image and of
/// both graphs as one batched computation in one autograd node with a written-out backward
/// (detail::FusedGraphNCE: about half the ops of the composed modules per forward + backward), for
/// float32/float64 maps of one batch size and patch count per layer and negatives from this
/// process; otherwise, and in `layer_loss`, layer by layer through the submodules (same numbers
/// to rounding). Gradients of gradients are not available. Parameters exist from construction, so an optimizer can
/// be built at once; their names follow the released code (`embed_0.weight`, `gnn_0.lin.weight`,
/// `pools_0.0.proj.weight`, `gnn_pools_0.0.lin.weight`, ...), see docs/reference-compatibility.md.
///
///   GraphNCELoss gcl(GraphNCELossOptions::reference({256, 512, 512}));
///   auto loss = gcl(vgg(G(x)), vgg(x));
class GraphNCELossImpl : public torch::nn::Cloneable<GraphNCELossImpl> {
 public:
  explicit GraphNCELossImpl(std::vector<int64_t> in_channels)
      : GraphNCELossImpl(GraphNCELossOptions(std::move(in_channels))) {}
  explicit GraphNCELossImpl(const GraphNCELossOptions& options_) : options(options_) { reset(); }

  void reset() override {
    constexpr const char* fn = "GraphNCELoss";
    const auto& o = options;
    detail::check_graph_nce_options(o, fn);

    embeds.clear();
    gnns.clear();
    pools.clear();
    gnn_pools.clear();
    // forward() computes with the submodules' weights through functional::detail (the inputs are
    // checked once, in forward); a submodule called on its own scans for NaN/Inf as the loss does.
    const auto conv_options = [&](int64_t hops) {
      return TAGConvOptions(o.nc(), o.nc())
          .hops(hops)
          .bias(o.conv_bias())
          .init_std(o.init_std())
          .check_finite(o.check_finite());
    };
    for (size_t l = 0; l < o.in_channels().size(); ++l) {
      const auto id = std::to_string(l);
      embeds.push_back(register_module("embed_" + id, torch::nn::Linear(o.in_channels()[l], o.nc())));
      gnns.push_back(register_module("gnn_" + id, TAGConv(conv_options(o.hops()))));
      torch::nn::ModuleList level_pools, level_gnns;
      for (int64_t p = 1; p <= o.pooling_levels(); ++p) {
        level_pools->push_back(TopKPool(TopKPoolOptions(o.nc())
                                            .ratio(1.0 / std::ldexp(static_cast<double>(o.down_scale()), p - 1))
                                            .activation(o.score_activation())
                                            .bias(o.score_bias())
                                            .pooled_adjacency(o.pooled_adjacency())
                                            .init_std(o.init_std())
                                            .check_finite(o.check_finite())));
        level_gnns->push_back(TAGConv(conv_options(o.pooled_hops())));
      }
      pools.push_back(register_module("pools_" + id, level_pools));
      gnn_pools.push_back(register_module("gnn_pools_" + id, level_gnns));
    }
    reset_parameters();
  }

  void reset_parameters() {
    torch::NoGradGuard no_grad;
    for (auto& embed : embeds) {
      embed->weight.normal_(0.0, options.init_std());
      embed->bias.zero_();
    }
    for (auto& gnn : gnns) gnn->reset_parameters();
    for (size_t l = 0; l < pools.size(); ++l) {
      for (size_t p = 0; p < pools[l]->size(); ++p) {
        pools[l]->ptr<TopKPoolImpl>(p)->reset_parameters();
        gnn_pools[l]->ptr<TAGConvImpl>(p)->reset_parameters();
      }
    }
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "patchgcl::GraphNCELoss(layers=" << options.in_channels().size()
           << ", num_patches=" << options.num_patches() << ", nc=" << options.nc()
           << ", threshold=" << options.adjacency().threshold() << ", hops=" << options.hops()
           << ", pooling_levels=" << options.pooling_levels() << ", tau=" << options.info_nce().temperature() << ")";
  }

  /// The loss of `output_features` (G(x)'s feature maps, the output graphs) against
  /// `input_features` (x's, the input graphs and the adjacency), one `[B, C_l, H_l, W_l]` map
  /// per layer; one graph per image. `patch_ids` (one `[N]` int64 tensor per layer) fixes the
  /// sampled locations; by default they are drawn with `functional::random_patch_ids`.
  torch::Tensor forward(const std::vector<torch::Tensor>& output_features,
                        const std::vector<torch::Tensor>& input_features,
                        const std::vector<torch::Tensor>& patch_ids = {}) {
    constexpr const char* fn = "GraphNCELoss";
    if (!fused_applies(output_features, input_features, patch_ids))
      return detail::mean_over_layers(fn, options, output_features, input_features, patch_ids,
                                      [&](size_t l, const torch::Tensor& output, const torch::Tensor& input) {
                                        return compute_layer_loss(l, output, input);
                                      });
    auto ids = detail::checked_patch_ids(fn, options, output_features, input_features, patch_ids);
    auto loss = fused_loss(output_features, input_features, ids, nullptr);
    detail::check_finite_result(loss, options.check_finite(), fn, "loss");
    return loss;
  }

  /// What forward computes, recorded for diagnostics (the paper's Fig. 9), without gradient:
  /// per layer the sampled patches and their (row, col) on the feature map, and per level (0: the
  /// patch graph of Eq. 1-4; p: pooling level p, Eq. 5-9) A, Abar, the degrees, every node's
  /// pooling score sigma(S), the kept nodes and the level's InfoNCE. Same arguments and checks as
  /// forward, and the same code: both run `compute_layer_loss` (inspect passes it a record), so
  /// for the same `patch_ids` (or the same generator state when they are drawn) `loss` is
  /// forward's value and the kept nodes are the ones forward pools. Tensors are detached, on the
  /// features' device (no host copy here).
  ///
  ///   auto record = gcl->inspect(vgg(G(x)), vgg(x), ids);
  ///   auto scores = record.layers[2].levels[1].scores;  // [B, N]: sigma(S) of every patch
  GraphNCEInspection inspect(const std::vector<torch::Tensor>& output_features,
                             const std::vector<torch::Tensor>& input_features,
                             const std::vector<torch::Tensor>& patch_ids = {}) {
    torch::NoGradGuard no_grad;
    if (fused_applies(output_features, input_features, patch_ids)) {
      constexpr const char* fn = "GraphNCELoss::inspect";
      auto ids = detail::checked_patch_ids(fn, options, output_features, input_features, patch_ids);
      detail::FusedGraphNCELevels levels;
      GraphNCEInspection result{{}, fused_loss(output_features, input_features, ids, &levels)};
      detail::check_finite_result(result.loss, options.check_finite(), fn, "loss");
      result.layers = detail::fused_layer_records(levels, output_features, ids, options.level_weights());
      return result;
    }
    GraphNCEInspection result;
    std::vector<torch::Tensor> ids;  // filled by mean_over_layers before it calls the layer loss
    result.loss = detail::mean_over_layers(
        "GraphNCELoss::inspect", options, output_features, input_features, patch_ids,
        [&](size_t l, const torch::Tensor& output, const torch::Tensor& input) {
          GraphLayerInspection layer = detail::sampled_patches_record(output_features[l], ids[l]);
          layer.loss = compute_layer_loss(l, output, input, &layer);
          result.layers.push_back(layer);
          return layer.loss;
        },
        &ids);
    return result;
  }

  /// Steps 1-6 for layer `l` on sampled nodes `[B, N, C_l]` (or `[N, C_l]`) of the output image
  /// G(x) (`output`) and of the input image x (`input`).
  torch::Tensor layer_loss(size_t l, const torch::Tensor& output, const torch::Tensor& input) {
    constexpr const char* fn = "GraphNCELoss::layer_loss";
    detail::check_layer_index(l, embeds.size(), fn);
    detail::check_nodes(output, fn, "output");
    detail::check_nodes(input, fn, "input");
    detail::check_same_shape(output, input, fn, "output", "input");
    detail::check_same_device(output, input, fn, "output", "input");
    detail::check_layer_channels(output, l, options.in_channels()[l], fn, "output");
    detail::check_finite(output, options.check_finite(), fn, "output");
    detail::check_finite(input, options.check_finite(), fn, "input");
    auto loss = compute_layer_loss(l, output, input);
    detail::check_finite_result(loss, options.check_finite(), fn, "loss");
    return loss;
  }

  GraphNCELossOptions options;
  std::vector<torch::nn::Linear> embeds;
  std::vector<TAGConv> gnns;
  std::vector<torch::nn::ModuleList> pools;
  std::vector<torch::nn::ModuleList> gnn_pools;

 private:
  /// Whether `forward` runs every layer at once (detail::FusedGraphNCE): float32/float64 features
  /// of the parameters' dtype and device, one batch size and one number of patches for all
  /// layers, and negatives from this process without pruning. Otherwise (and for arguments the
  /// checks will reject) it runs layer by layer (`compute_layer_loss`).
  bool fused_applies(const std::vector<torch::Tensor>& output_features,
                     const std::vector<torch::Tensor>& input_features,
                     const std::vector<torch::Tensor>& patch_ids) const {
    return detail::fused_layers_apply(options, output_features, input_features, patch_ids, embeds[0]->weight);
  }

  /// The fused loss on checked arguments; `levels` receives the per-level tensors (inspect).
  torch::Tensor fused_loss(const std::vector<torch::Tensor>& output_features,
                           const std::vector<torch::Tensor>& input_features, const std::vector<torch::Tensor>& ids,
                           detail::FusedGraphNCELevels* levels) {
    std::vector<int64_t> nodes{ids[0].size(0)};  // n_0 = N, then what each pooling level keeps
    for (int64_t p = 1; p <= options.pooling_levels(); ++p) {
      const int64_t n = nodes.back(), k = pools[0]->ptr<TopKPoolImpl>(p - 1)->kept_nodes(n);
      functional::detail::check_kept_nodes(k, n, "TopKPool");
      nodes.push_back(k);
    }
    const auto config = detail::fused_graph_nce_config(options, output_features, ids, std::move(nodes));
    std::vector<torch::Tensor> long_ids;
    for (const auto& layer_ids : ids) long_ids.push_back(layer_ids.to(torch::kLong));
    const auto params = fused_parameters();
    if (levels || !torch::GradMode::is_enabled())
      return detail::fused_graph_nce(config, output_features, input_features, long_ids, params, nullptr, levels);
    return detail::FusedGraphNCE::apply(torch::TensorList(output_features), input_features, long_ids,
                                        torch::TensorList(params), config);
  }

  /// The parameters in the order detail::FusedGraphNCESettings lays them out.
  std::vector<torch::Tensor> fused_parameters() const {
    std::vector<torch::Tensor> params;
    for (size_t l = 0; l < embeds.size(); ++l) {
      params.push_back(embeds[l]->weight);
      params.push_back(embeds[l]->bias);
      params.push_back(gnns[l]->lin->weight);
      if (options.conv_bias()) params.push_back(gnns[l]->lin->bias);
      for (int64_t p = 1; p <= options.pooling_levels(); ++p) {
        const auto& pool = *pools[l]->ptr<TopKPoolImpl>(p - 1);
        const auto& conv = *gnn_pools[l]->ptr<TAGConvImpl>(p - 1);
        params.push_back(pool.proj->weight);
        if (options.score_bias()) params.push_back(pool.proj->bias);
        params.push_back(conv.lin->weight);
        if (options.conv_bias()) params.push_back(conv.lin->bias);
      }
    }
    return params;
  }

  /// `layer_loss` on checked nodes: every step calls the detail computation of its function or
  /// submodule, with no second check. `record`, when given (inspect), receives every level.
  torch::Tensor compute_layer_loss(size_t l, const torch::Tensor& output, const torch::Tensor& input,
                                   GraphLayerInspection* record = nullptr) {
    const auto& o = options;
    auto& embed = embeds[l];
    auto v = embed_nodes(embed, detail::to_parameter_dtype(output, embed->weight, "GraphNCELoss", "output_features"));
    torch::Tensor z;
    {
      torch::NoGradGuard no_grad;  // the input graph is InfoNCE's detached side: no autograd graph
      z = embed_nodes(embed, detail::to_parameter_dtype(input, embed->weight, "GraphNCELoss", "input_features"));
    }
    auto adjacency = functional::detail::cosine_adjacency(z, o.adjacency());  // Eq. 1, from the input graph
    torch::Tensor loss, nodes, scores, kept;  // nodes: the level's nodes as indices into the patches (inspect)
    if (record) {
      nodes = torch::arange(z.size(-2), torch::TensorOptions().dtype(torch::kLong).device(z.device()));
      nodes = z.dim() == 3 ? nodes.expand({z.size(0), z.size(1)}) : nodes;
    }
    for (int64_t p = 0; p <= o.pooling_levels(); ++p) {
      auto level = std::make_pair(v, z);  // the level's graphs before its TAGConv
      if (p > 0) {
        auto& pool = *pools[l]->ptr<TopKPoolImpl>(p - 1);
        auto pooled = functional::detail::topk_pool(v, z, adjacency, pool.proj->weight, pool.proj->bias, pool.options,
                                                    "TopKPool");  // Eq. 5-6
        level = {pooled.output, pooled.input};
        adjacency = pooled.adjacency;
        scores = pooled.node_scores;
        kept = pooled.indices;
        if (record) nodes = nodes.gather(-1, kept);
      }
      auto abar = functional::detail::normalize_adjacency(adjacency, o.normalize());
      auto& conv = p == 0 ? *gnns[l] : *gnn_pools[l]->ptr<TAGConvImpl>(p - 1);
      level = functional::detail::shared_tag_conv(level.first, level.second, abar, conv.lin->weight, conv.lin->bias,
                                                  conv.options.hops());  // Eq. 2-3 (level 0), 7-8
      v = unit(level.first);
      z = unit(level.second);
      auto level_nce = detail::contrast(v, z, o);  // Eq. 4 (level 0), 9
      loss = p == 0 ? o.level_weights()[0] * level_nce : loss + o.level_weights()[p] * level_nce;
      if (record) detail::record_level(*record, nodes, adjacency, abar, scores, kept, level_nce, o.level_weights()[p]);
    }
    return o.average_levels() ? loss / static_cast<double>(o.pooling_levels() + 1) : loss;
  }

  torch::Tensor unit(const torch::Tensor& x) const {
    return functional::detail::l2_normalize(x, options.l2_eps(), functional::L2Eps::kClamp);
  }
  torch::Tensor embed_nodes(torch::nn::Linear& embed, const torch::Tensor& x) const { return unit(embed(x)); }
};
TORCH_MODULE(GraphNCELoss);

}  // namespace patchgcl

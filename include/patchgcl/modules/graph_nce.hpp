#pragma once

#include <patchgcl/detail/layers.hpp>
#include <patchgcl/functional/adjacency.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/modules/tag_conv.hpp>
#include <patchgcl/modules/topk_pool.hpp>
#include <patchgcl/options/graph_nce.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace patchgcl {

/// The patch-wise graph contrastive loss of PatchGCL (Jung, Kwon & Ye, AAAI 2024), Eq. 1-10.
///
/// Per feature layer l, with `N = num_patches` locations shared by the input x and the output G(x):
///  1. sampled features go through the embedding head `h_l` (`embed_l`, Linear(C_l, nc) + L2);
///  2. `A` = Eq. 1 on the input's embedded nodes (no gradient), `Abar` = normalised `A`;
///  3. one TAGConv (`gnn_l`, Eq. 2-3, `hops`) + L2 gives `Z` (input, detached: the keys) and
///     `V` (output: the queries), through the shared `Abar`;
///  4. InfoNCE between corresponding nodes (Eq. 4), weighted by `level_weights[0]`;
///  5. for each pooling level p = 1..P: `pools_l[p-1]` (TopKPool, Eq. 5-6) keeps
///     `max(2, N / (down_scale 2^(p-1)))` nodes of both graphs, `gnn_pools_l[p-1]` (TAGConv,
///     `pooled_hops`, Eq. 7-8) + L2, InfoNCE (Eq. 9) weighted by `level_weights[p]`;
///  6. the layer's weighted sum, divided by `P + 1` when `average_levels`.
/// The loss is the mean over layers. Parameters exist from construction, so an optimizer can
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
    detail::check_loss_options(o.in_channels(), o.num_patches(), o.nc(), o.l2_eps(), o.init_std(), o.info_nce(), fn);
    TORCH_CHECK(o.hops() >= 0 && o.pooled_hops() >= 0, fn, ": `hops` and `pooled_hops` must be >= 0, got ", o.hops(),
                " and ", o.pooled_hops());
    detail::check_at_least(o.pooling_levels(), 0, fn, "pooling_levels");
    detail::check_at_least(o.down_scale(), 1, fn, "down_scale");
    TORCH_CHECK(static_cast<int64_t>(o.level_weights().size()) >= o.pooling_levels() + 1, fn,
                ": `level_weights` needs pooling_levels + 1 = ", o.pooling_levels() + 1, " entries, got ",
                o.level_weights().size());
    for (size_t p = 0; p < o.level_weights().size(); ++p)
      TORCH_CHECK(std::isfinite(o.level_weights()[p]), fn, ": `level_weights[", p, "]` must be finite, got ",
                  o.level_weights()[p]);
    detail::check_cosine_threshold(o.adjacency().threshold(), fn, "adjacency.threshold");
    detail::check_positive(o.adjacency().eps(), fn, "adjacency.eps");

    embeds.clear();
    gnns.clear();
    pools.clear();
    gnn_pools.clear();
    for (size_t l = 0; l < o.in_channels().size(); ++l) {
      const auto id = std::to_string(l);
      embeds.push_back(register_module("embed_" + id, torch::nn::Linear(o.in_channels()[l], o.nc())));
      // The feature maps are scanned once in forward(); the submodules need not scan again.
      gnns.push_back(register_module("gnn_" + id, TAGConv(TAGConvOptions(o.nc(), o.nc())
                                                              .hops(o.hops())
                                                              .bias(o.conv_bias())
                                                              .init_std(o.init_std())
                                                              .check_finite(FiniteCheck::kNever))));
      torch::nn::ModuleList level_pools, level_gnns;
      for (int64_t p = 1; p <= o.pooling_levels(); ++p) {
        level_pools->push_back(TopKPool(TopKPoolOptions(o.nc())
                                            .ratio(1.0 / std::ldexp(static_cast<double>(o.down_scale()), p - 1))
                                            .activation(o.score_activation())
                                            .bias(o.score_bias())
                                            .pooled_adjacency(o.pooled_adjacency())
                                            .init_std(o.init_std())
                                            .check_finite(FiniteCheck::kNever)));
        level_gnns->push_back(TAGConv(TAGConvOptions(o.nc(), o.nc())
                                          .hops(o.pooled_hops())
                                          .bias(o.conv_bias())
                                          .init_std(o.init_std())
                                          .check_finite(FiniteCheck::kNever)));
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
    stream << "patchgcl::GraphNCELoss(layers=" << options.in_channels().size() << ", num_patches=" << options.num_patches()
           << ", nc=" << options.nc() << ", threshold=" << options.adjacency().threshold() << ", hops=" << options.hops()
           << ", pooling_levels=" << options.pooling_levels() << ", tau=" << options.info_nce().temperature() << ")";
  }

  /// The loss of `output_features` (G(x)'s feature maps, the output graphs) against
  /// `input_features` (x's, the input graphs and the adjacency), one `[B, C_l, H_l, W_l]` map
  /// per layer; one graph per image. `patch_ids` (one `[N]` int64 tensor per layer) fixes the
  /// sampled locations; by default they are drawn with `functional::random_patch_ids`.
  torch::Tensor forward(const std::vector<torch::Tensor>& output_features,
                        const std::vector<torch::Tensor>& input_features,
                        const std::vector<torch::Tensor>& patch_ids = {}) {
    return detail::mean_over_layers("GraphNCELoss", options.in_channels(), options.num_patches(), output_features,
                                    input_features, patch_ids, options.check_finite(),
                                    [&](size_t l, const torch::Tensor& q, const torch::Tensor& k) {
                                      return layer_loss(l, q, k);
                                    });
  }

  /// Steps 1-6 for layer `l` on sampled nodes `[B, N, C_l]` of the output (`query`) and input (`key`) image.
  torch::Tensor layer_loss(size_t l, const torch::Tensor& query, const torch::Tensor& key) {
    TORCH_CHECK(l < embeds.size(), "GraphNCELoss::layer_loss: layer ", l, " out of range [0, ", embeds.size(), ")");
    const auto& o = options;
    auto nce = o.info_nce();
    nce.check_finite(FiniteCheck::kNever);  // the feature maps were scanned; their projections need not be

    auto& embed = embeds[l];
    auto v = embed_nodes(embed, detail::to_parameter_dtype(query, embed->weight, "GraphNCELoss", "output_features"));
    torch::Tensor z;
    {
      torch::NoGradGuard no_grad;  // the input graph is the key: no gradient, no autograd graph
      z = embed_nodes(embed, detail::to_parameter_dtype(key, embed->weight, "GraphNCELoss", "input_features"));
    }
    auto adjacency_options = o.adjacency();
    adjacency_options.check_finite(FiniteCheck::kNever);
    auto normalize_options = o.normalize();
    normalize_options.check_finite(FiniteCheck::kNever);
    auto adjacency = functional::cosine_adjacency(z, adjacency_options);
    auto level = gnns[l]->forward_shared(v, z, functional::normalize_adjacency(adjacency, normalize_options));
    v = unit(level.first);
    z = unit(level.second);
    auto loss = o.level_weights()[0] * functional::info_nce(v, z, nce);

    for (int64_t p = 1; p <= o.pooling_levels(); ++p) {
      auto pooled = pools[l]->ptr<TopKPoolImpl>(p - 1)->forward(z, v, adjacency);
      auto abar = functional::normalize_adjacency(pooled.adjacency, normalize_options);
      level = gnn_pools[l]->ptr<TAGConvImpl>(p - 1)->forward_shared(pooled.query, pooled.key, abar);
      v = unit(level.first);
      z = unit(level.second);
      loss = loss + o.level_weights()[p] * functional::info_nce(v, z, nce);
      adjacency = pooled.adjacency;
    }
    return o.average_levels() ? loss / static_cast<double>(o.pooling_levels() + 1) : loss;
  }

  GraphNCELossOptions options;
  std::vector<torch::nn::Linear> embeds;
  std::vector<TAGConv> gnns;
  std::vector<torch::nn::ModuleList> pools;
  std::vector<torch::nn::ModuleList> gnn_pools;

 private:
  torch::Tensor unit(const torch::Tensor& x) const {
    return functional::l2_normalize(x, options.l2_eps(), functional::L2Eps::kClamp, FiniteCheck::kNever);
  }
  torch::Tensor embed_nodes(torch::nn::Linear& embed, const torch::Tensor& x) const { return unit(embed(x)); }
};
TORCH_MODULE(GraphNCELoss);

}  // namespace patchgcl

// The composed losses: PatchNCELoss (CUT, PUT) and GraphNCELoss (PatchGCL).
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_test::f64;
using Tensors = std::vector<torch::Tensor>;

namespace {
torch::Tensor unit(const torch::Tensor& x) { return x / x.norm(2, -1, true); }

/// CUT's cross-entropy over [pos | negatives, diagonal -10] / tau, mean over rows.
torch::Tensor cut_nce(const torch::Tensor& q, const torch::Tensor& k, double tau = 0.07) {
  const int64_t n = q.size(0);
  auto logits =
      torch::cat({(q * k).sum(1, true), q.mm(k.t()).masked_fill(torch::eye(n, torch::kBool), -10.0)}, 1) / tau;
  return torch::nn::functional::cross_entropy(logits, torch::zeros({n}, torch::kLong));
}

/// Nodes [N, C] of image b of a [B, C, H, W] map at `ids`, written without the library.
torch::Tensor nodes_of(const torch::Tensor& map, int64_t b, const torch::Tensor& ids) {
  return map[b].reshape({map.size(1), -1}).t().index_select(0, ids);
}

/// DGL's TAGConv on M = A + I (the released code's double loop), written out.
torch::Tensor dgl_tag_conv(TAGConvImpl& conv, const torch::Tensor& a, const torch::Tensor& x) {
  auto m = a + torch::eye(a.size(0), f64());
  auto d = torch::diag(m.sum(0).clamp_min(1).pow(-0.5));
  auto s = d.mm(m.t()).mm(d);
  auto out = conv.lin->bias.expand({x.size(0), -1}).clone();
  auto h = x;
  for (int64_t l = 0; l <= conv.options.hops(); ++l) {
    out = out + h.mm(conv.hop_weight(l));
    h = s.mm(h);
  }
  return out;
}

/// The released PatchGCL GNNLoss for one image and one layer, restated step by step.
torch::Tensor released_layer_loss(GraphNCELossImpl& m, size_t l, const torch::Tensor& fq, const torch::Tensor& fk) {
  auto& embed = m.embeds[l];
  auto zk = unit(fk.mm(embed->weight.t()) + embed->bias).detach();
  auto zq = unit(fq.mm(embed->weight.t()) + embed->bias);
  auto a = zk.mm(zk.t()).gt(0.1).to(torch::kFloat64);
  auto& gnn = *m.gnns[l];
  auto vq = unit(dgl_tag_conv(gnn, a, zq));
  auto vk = unit(dgl_tag_conv(gnn, a, zk)).detach();
  auto level0 = cut_nce(vq, vk) + cut_nce(vk, vq);

  auto& pool = *m.pools[l]->ptr<TopKPoolImpl>(0);
  auto score = torch::sigmoid(vk.mm(pool.proj->weight.t()).squeeze(1) + pool.proj->bias);
  auto top = score.topk(std::max<int64_t>(2, fq.size(0) / 4));
  auto values = std::get<0>(top).unsqueeze(1);
  auto idx = std::get<1>(top);
  auto pk = vk.index_select(0, idx) * values, pq = vq.index_select(0, idx) * values;
  auto a2 = a.mm(a).gt(0).to(torch::kFloat64).index_select(0, idx).index_select(1, idx);
  auto& gnn_pool = *m.gnn_pools[l]->ptr<TAGConvImpl>(0);
  auto vq2 = unit(dgl_tag_conv(gnn_pool, a2, pq));
  auto vk2 = unit(dgl_tag_conv(gnn_pool, a2, pk)).detach();
  auto level1 = cut_nce(vq2, vk2) + cut_nce(vk2, vq2);
  return (level0 + 0.5 * level1) / 2.0;
}

struct Pyramid {
  Tensors out, in, ids;
};
Pyramid random_pyramid(int64_t batch, const std::vector<int64_t>& channels, const std::vector<int64_t>& sides,
                       int64_t num_patches, uint64_t seed, bool out_grad = true) {
  torch::manual_seed(seed);
  Pyramid p;
  for (size_t l = 0; l < channels.size(); ++l) {
    p.out.push_back(torch::randn({batch, channels[l], sides[l], sides[l]}, f64()).requires_grad_(out_grad));
    p.in.push_back(torch::randn({batch, channels[l], sides[l], sides[l]}, f64()));
    p.ids.push_back(torch::randperm(sides[l] * sides[l], torch::kLong).narrow(0, 0, num_patches));
  }
  return p;
}

GraphNCELoss small_graph_loss(GraphNCELossOptions o) {
  GraphNCELoss loss(o.init_std(0.3));
  loss->to(torch::kFloat64);
  torch::NoGradGuard g;
  for (auto& p : loss->named_parameters())
    if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.1, 0.1);
  return loss;
}

/// The fused loss equals the layer-by-layer one (`layered`) to 1e-12 relative in float64: the value,
/// and the gradient with respect to each of `maps` and every parameter of `module`.
void check_same_loss_and_gradients(const torch::Tensor& fused, const torch::Tensor& layered, Tensors maps,
                                   const torch::nn::Module& module) {
  CHECK(fused.item<double>() == Approx(layered.item<double>()).epsilon(1e-12));
  Tensors wrt = std::move(maps);
  for (const auto& param : module.parameters()) wrt.push_back(param);
  auto g_fused = torch::autograd::grad({fused}, wrt);
  auto g_layered = torch::autograd::grad({layered}, wrt);
  for (size_t i = 0; i < wrt.size(); ++i) {
    INFO("input " << i);
    CHECK(patchgcl_test::max_abs(g_fused[i], g_layered[i]) <
          1e-12 * std::max(1.0, g_layered[i].abs().max().item<double>()));
  }
}
}  // namespace

TEST_CASE("PatchNCELoss is CUT's PatchSampleF head + PatchNCE averaged over layers", "[patch_nce]") {
  PatchNCELoss loss(PatchNCELossOptions({3, 5}).num_patches(10).nc(8).init_std(0.3));
  loss->to(torch::kFloat64);
  auto p = random_pyramid(2, {3, 5}, {6, 4}, 10, 21);
  auto value = loss(p.out, p.in, p.ids);

  torch::Tensor expected = torch::zeros({}, f64());
  for (size_t l = 0; l < 2; ++l) {
    auto head = [&](const torch::Tensor& x) {
      auto h = loss->mlps[l]->forward(x);
      return h / (h.norm(2, 1, true) + 1e-7);
    };
    torch::Tensor layer = torch::zeros({}, f64());
    for (int64_t b = 0; b < 2; ++b)
      layer = layer + cut_nce(head(nodes_of(p.out[l], b, p.ids[l])), head(nodes_of(p.in[l], b, p.ids[l])).detach());
    expected = expected + layer / 2.0;
  }
  expected = expected / 2.0;
  CHECK(value.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
}

TEST_CASE("PatchNCELoss names its head as CUT does and creates it at construction", "[patch_nce]") {
  PatchNCELoss loss(PatchNCELossOptions({3, 128}));
  auto params = loss->named_parameters();
  CHECK(params.size() == 8);
  CHECK(params["mlp_0.0.weight"].sizes() == torch::IntArrayRef({256, 3}));
  CHECK(params["mlp_1.2.weight"].sizes() == torch::IntArrayRef({256, 256}));
  CHECK(params["mlp_1.2.bias"].abs().sum().item<double>() == 0.0);
  CHECK(PatchNCELoss(PatchNCELossOptions({3}).use_mlp(false))->parameters().empty());
}

TEST_CASE("PatchNCELoss::put prunes with the released dimension-0 sort", "[patch_nce]") {
  auto o = PatchNCELossOptions::put({4}, 3).num_patches(12).nc(6);
  CHECK(o.info_nce().pruning() == Pruning::kReferenceColumnSort);
  CHECK(o.info_nce().hard_negatives() == 3);
  PatchNCELoss put(o);
  put->to(torch::kFloat64);
  auto p = random_pyramid(1, {4}, {5}, 12, 22);
  auto v = put->project(0, F::sample_patches(p.out[0], p.ids[0]));
  auto z = put->project(0, F::sample_patches(p.in[0], p.ids[0]));
  CHECK(put(p.out, p.in, p.ids).item<double>() ==
        Approx(F::info_nce(v, z, o.info_nce()).item<double>()).epsilon(1e-13));
}

TEST_CASE("GraphNCELoss reproduces the released PatchGCL loss restated step by step", "[graph_nce]") {
  auto loss = small_graph_loss(GraphNCELossOptions::reference({4, 6}).num_patches(16).nc(8));
  auto p = random_pyramid(1, {4, 6}, {6, 5}, 16, 23);
  auto value = loss(p.out, p.in, p.ids);
  auto expected = (released_layer_loss(*loss, 0, nodes_of(p.out[0], 0, p.ids[0]), nodes_of(p.in[0], 0, p.ids[0])) +
                   released_layer_loss(*loss, 1, nodes_of(p.out[1], 0, p.ids[1]), nodes_of(p.in[1], 0, p.ids[1]))) /
                  2.0;
  CHECK(value.item<double>() == Approx(expected.item<double>()).epsilon(1e-11));

  value.backward();
  auto grad = p.out[0].grad().clone();
  p.out[0].mutable_grad().zero_();
  expected.backward();
  CHECK(patchgcl_test::max_abs(grad, p.out[0].grad()) < 1e-11);
}

TEST_CASE("GraphNCELoss names its parameters after the released code and creates them up front", "[graph_nce]") {
  GraphNCELoss loss(GraphNCELossOptions({256, 512, 512}));
  auto params = loss->named_parameters();
  CHECK(params["embed_2.weight"].sizes() == torch::IntArrayRef({256, 512}));
  CHECK(params["gnn_0.lin.weight"].sizes() == torch::IntArrayRef({256, 768}));
  CHECK(params["pools_1.0.proj.weight"].sizes() == torch::IntArrayRef({1, 256}));
  CHECK(params["pools_1.0.proj.bias"].sizes() == torch::IntArrayRef({1}));
  CHECK(params["gnn_pools_0.0.lin.weight"].sizes() == torch::IntArrayRef({256, 512}));
  CHECK(params.size() == 3 * 8);
  auto paper = GraphNCELoss(GraphNCELossOptions::paper({8}))->named_parameters();
  CHECK(paper.size() == 5);  // embed weight + bias, gnn weight, p, pooled gnn weight: no conv or score biases
  CHECK(paper["gnn_pools_0.0.lin.weight"].size(1) == 3 * 256);  // L-hop pooled TAGConv
}

TEST_CASE("GraphNCELoss on a batch of 3 equals three single-image calls", "[graph_nce]") {
  auto loss = small_graph_loss(GraphNCELossOptions({4}).num_patches(12).nc(6));
  auto p = random_pyramid(3, {4}, {5}, 12, 24);
  auto batched = loss(p.out, p.in, p.ids);
  double mean = 0;
  for (int64_t b = 0; b < 3; ++b)
    mean += loss(Tensors{p.out[0].narrow(0, b, 1)}, Tensors{p.in[0].narrow(0, b, 1)}, p.ids).item<double>() / 3.0;
  CHECK(batched.item<double>() == Approx(mean).epsilon(1e-12));

  PatchNCELoss nce(PatchNCELossOptions({4}).num_patches(12).nc(6));
  nce->to(torch::kFloat64);
  double nce_mean = 0;
  for (int64_t b = 0; b < 3; ++b)
    nce_mean += nce(Tensors{p.out[0].narrow(0, b, 1)}, Tensors{p.in[0].narrow(0, b, 1)}, p.ids).item<double>() / 3.0;
  CHECK(nce(p.out, p.in, p.ids).item<double>() == Approx(nce_mean).epsilon(1e-12));
}

TEST_CASE("GraphNCELoss gradient w.r.t. the output features matches finite differences", "[graph_nce]") {
  auto preset = GENERATE(0, 1);
  auto o = preset == 0 ? GraphNCELossOptions::reference({3}) : GraphNCELossOptions::paper({3});
  auto loss = small_graph_loss(o.num_patches(8).nc(4));
  auto p = random_pyramid(1, {3}, {4}, 8, 25);
  auto f = [&] { return loss(p.out, p.in, p.ids); };
  CHECK(patchgcl_test::gradient_error(f, p.out[0]) < 1e-7);
}

/// Option sets that reach every branch of GraphNCELoss's fused node (detail::FusedGraphNCE).
static GraphNCELossOptions fused_variant(int variant) {
  auto o = variant == 1 ? GraphNCELossOptions::paper({3, 5}) : GraphNCELossOptions::reference({3, 5});
  o.num_patches(10).nc(6);
  if (variant == 2) {  // tanh scores, two pooling levels, other hop counts
    o.score_activation(ScoreActivation::kTanh).pooling_levels(2).down_scale(2).level_weights({1.0, 0.5, 0.25});
    o.hops(1).pooled_hops(2);
  }
  if (variant == 3) {  // negatives from the whole batch, one direction, no extra negative
    o.info_nce()
        .negatives(Negatives::kWholeBatch)
        .direction(Direction::kOutputToInput)
        .diagonal_value(InfoNCEOptions::kNoDiagonal);
  }
  if (variant == 4) o.normalize().normalization(Normalization::kRandomWalk);  // Abar not symmetric
  return o;
}

TEST_CASE("GraphNCELoss's all-layer fused node equals the layer-by-layer loss, value and every gradient",
          "[graph_nce]") {
  // forward runs every layer at once (detail::FusedGraphNCE, written-out backward); layer_loss
  // runs one layer through the composed modules with autograd. Both must agree in float64.
  const int variant = GENERATE(0, 1, 2, 3, 4);
  INFO("variant " << variant);
  auto loss = small_graph_loss(fused_variant(variant));
  auto p = random_pyramid(2, {3, 5}, {4, 5}, 10, 40 + variant);
  auto fused = loss(p.out, p.in, p.ids);
  torch::Tensor layered;
  for (size_t l = 0; l < 2; ++l) {
    auto term = loss->layer_loss(l, F::sample_patches(p.out[l], p.ids[l]), F::sample_patches(p.in[l], p.ids[l]));
    layered = layered.defined() ? layered + term : term;
  }
  check_same_loss_and_gradients(fused, layered / 2.0, {p.out[0], p.out[1]}, *loss);
}

TEST_CASE("GraphNCELoss's fused backward matches finite differences in the output features", "[graph_nce]") {
  // (The parameters also shape the detached input graph, whose gradient the loss leaves out by
  // definition, so finite differences check the maps; the parameters' gradients are checked
  // against autograd through the layer-by-layer modules above.)
  const int variant = GENERATE(0, 1, 2, 3, 4);
  INFO("variant " << variant);
  auto loss = small_graph_loss(fused_variant(variant));
  auto p = random_pyramid(2, {3, 5}, {4, 5}, 10, 60 + variant);
  auto f = [&] { return loss(p.out, p.in, p.ids); };
  CHECK(patchgcl_test::gradient_error(f, p.out[0]) < 1e-7);
  CHECK(patchgcl_test::gradient_error(f, p.out[1]) < 1e-7);
  // The written-out backward is not differentiable: asking for it says so.
  CHECK_THROWS_WITH(torch::autograd::grad({f()}, {p.out[0]}, {}, true, true), Catch::Contains("create_graph"));
}

TEST_CASE("PatchNCELoss's all-layer fused node equals the layer-by-layer loss and finite differences", "[patch_nce]") {
  const int variant = GENERATE(0, 1, 2);
  INFO("variant " << variant);
  auto o = PatchNCELossOptions({3, 5}).num_patches(10).nc(6).init_std(0.3);
  if (variant == 1) o.info_nce().negatives(Negatives::kWholeBatch);
  if (variant == 2) o.info_nce().direction(Direction::kBoth).diagonal_value(InfoNCEOptions::kNoDiagonal);
  PatchNCELoss loss(o);
  loss->to(torch::kFloat64);
  auto p = random_pyramid(2, {3, 5}, {4, 5}, 10, 70 + variant);
  auto fused = loss(p.out, p.in, p.ids);
  torch::Tensor layered;
  for (size_t l = 0; l < 2; ++l) {
    auto v = loss->project(l, F::sample_patches(p.out[l], p.ids[l]));
    auto z = loss->project(l, F::sample_patches(p.in[l], p.ids[l])).detach();
    auto term = F::info_nce(v, z, o.info_nce());
    layered = layered.defined() ? layered + term : term;
  }
  check_same_loss_and_gradients(fused, layered / 2.0, {p.out[0], p.out[1]}, *loss);
  auto f = [&] { return loss(p.out, p.in, p.ids); };
  CHECK(patchgcl_test::gradient_error(f, p.out[1]) < 1e-7);
}

TEST_CASE("GraphNCELoss presets: reference is the default, paper follows the text", "[graph_nce]") {
  auto ref = GraphNCELossOptions::reference({8});
  CHECK(ref.adjacency().comparison() == Comparison::kGreater);
  CHECK(ref.normalize().self_loops() == SelfLoops::kDouble);
  CHECK(ref.info_nce().direction() == Direction::kBoth);
  CHECK(ref.pooled_hops() == 1);
  auto paper = GraphNCELossOptions::paper({8});
  CHECK(paper.adjacency().comparison() == Comparison::kGreaterEqual);
  CHECK(paper.pooled_adjacency() == PooledAdjacency::kInduced);
  CHECK(paper.info_nce().direction() == Direction::kInputToOutput);
  auto a = small_graph_loss(GraphNCELossOptions::reference({4}).num_patches(12).nc(6));
  auto b = small_graph_loss(GraphNCELossOptions::paper({4}).num_patches(12).nc(6));
  auto p = random_pyramid(1, {4}, {5}, 12, 26);
  auto va = a(p.out, p.in, p.ids).item<double>(), vb = b(p.out, p.in, p.ids).item<double>();
  CHECK(std::isfinite(va));
  CHECK(std::isfinite(vb));
  CHECK(va != Approx(vb));
}

TEST_CASE("GraphNCELoss trains: Adam built before the first call lowers the loss", "[graph_nce]") {
  torch::manual_seed(27);
  GraphNCELoss loss(GraphNCELossOptions({4}).num_patches(16).nc(8));
  auto out = torch::randn({1, 4, 6, 6}, torch::requires_grad());
  auto in = torch::randn({1, 4, 6, 6});
  auto ids = Tensors{torch::randperm(36).narrow(0, 0, 16)};
  auto params = loss->parameters();
  params.push_back(out);
  torch::optim::Adam adam(params, torch::optim::AdamOptions(1e-2));
  const double first = loss(Tensors{out}, Tensors{in}, ids).item<double>();
  for (int step = 0; step < 30; ++step) {
    adam.zero_grad();
    loss(Tensors{out}, Tensors{in}, ids).backward();
    adam.step();
  }
  CHECK(loss(Tensors{out}, Tensors{in}, ids).item<double>() < 0.8 * first);
}

TEST_CASE("GraphNCELoss stays finite on degenerate features", "[graph_nce]") {
  auto loss = small_graph_loss(GraphNCELossOptions({4}).num_patches(12).nc(6));
  auto ids = Tensors{torch::randperm(25).narrow(0, 0, 12)};
  auto check = [&](torch::Tensor out, torch::Tensor in) {
    out.requires_grad_();
    auto value = loss(Tensors{out}, Tensors{in}, ids);
    value.backward();
    CHECK(std::isfinite(value.item<double>()));
    CHECK(torch::isfinite(out.grad()).all().item<bool>());
  };
  SECTION("zero feature maps") { check(torch::zeros({1, 4, 5, 5}, f64()), torch::zeros({1, 4, 5, 5}, f64())); }
  SECTION("duplicated features: a fully connected graph") {
    check(torch::ones({1, 4, 5, 5}, f64()), torch::ones({1, 4, 5, 5}, f64()));
  }
  SECTION("huge and tiny magnitudes") {
    check(torch::randn({1, 4, 5, 5}, f64()) * 1e8, torch::randn({1, 4, 5, 5}, f64()) * 1e-8);
  }
  SECTION("half precision feature maps are computed in float32") {
    GraphNCELoss half_loss(GraphNCELossOptions({4}).num_patches(12).nc(6));
    auto value = half_loss(Tensors{torch::randn({1, 4, 5, 5}).to(torch::kHalf)},
                           Tensors{torch::randn({1, 4, 5, 5}).to(torch::kHalf)}, ids);
    CHECK(value.scalar_type() == torch::kFloat32);
    CHECK(std::isfinite(value.item<double>()));
  }
}

TEST_CASE("GraphNCELoss rejects bad input with a message naming the argument", "[graph_nce]") {
  GraphNCELoss loss(GraphNCELossOptions({4, 8}).num_patches(16).nc(8));
  auto a = torch::randn({1, 4, 8, 8}), b = torch::randn({1, 8, 4, 4});
  CHECK_THROWS_WITH(loss(Tensors{a}, Tensors{a}), Catch::Contains("expected 2 output feature maps"));
  CHECK_THROWS_WITH(loss(Tensors{a, b}, Tensors{a, b.narrow(1, 0, 4)}), Catch::Contains("same shape"));
  CHECK_THROWS_WITH(loss(Tensors{a, a}, Tensors{a, a}),
                    Catch::Contains("output_features[1]") && Catch::Contains("8 channels"));
  CHECK_THROWS_WITH(loss(Tensors{a, torch::randn({1, 8, 3, 3})}, Tensors{a, torch::randn({1, 8, 3, 3})}),
                    Catch::Contains("num_patches") && Catch::Contains("H*W = 9"));
  CHECK_THROWS_WITH(loss(Tensors{a.view({4, 8, 8}), b}, Tensors{a, b}), Catch::Contains("[B, C, H, W]"));
  auto nan = a.clone();
  nan[0][0][0][0] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(loss(Tensors{nan, b}, Tensors{a, b}), Catch::Contains("NaN or Inf"));
  CHECK_THROWS_WITH(GraphNCELoss(GraphNCELossOptions({4}).pooling_levels(2)), Catch::Contains("level_weights"));
  CHECK_THROWS_WITH(GraphNCELoss(GraphNCELossOptions({})), Catch::Contains("in_channels"));
  CHECK_THROWS_WITH(loss(Tensors{a.to(torch::kFloat64), b.to(torch::kFloat64)},
                         Tensors{a.to(torch::kFloat64), b.to(torch::kFloat64)}),
                    Catch::Contains("module->to"));
}

TEST_CASE("random_patch_ids draws distinct locations reproducibly", "[graph_nce]") {
  auto map = torch::zeros({2, 3, 7, 5});
  torch::manual_seed(5);
  auto a = F::random_patch_ids(map, 20);
  torch::manual_seed(5);
  auto b = F::random_patch_ids(map, 20);
  CHECK(torch::equal(a, b));
  CHECK(std::get<0>(torch::_unique(a)).numel() == 20);
  CHECK(a.max().item<int64_t>() < 35);
  auto nodes =
      F::sample_patches(torch::arange(2 * 3 * 35, torch::kFloat32).view({2, 3, 7, 5}), torch::tensor({0, 34, 6}));
  CHECK(nodes.sizes() == torch::IntArrayRef({2, 3, 3}));
  CHECK(nodes[1][2][1].item<float>() == 35 * 3 + 35 + 6);  // image 1, channel 1, location 6
}

// GraphNCELoss::inspect: the graphs forward builds, recorded for diagnostics (Fig. 9).
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_test::f64;

namespace {
struct Features {
  std::vector<torch::Tensor> output, input, ids;
};

/// Two layers (4 and 6 channels on 8x8 and 6x6 maps), `batch` images, 20 patches per layer.
Features features(int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  Features f;
  for (auto [c, side] : {std::pair<int64_t, int64_t>{4, 8}, {6, 6}}) {
    f.output.push_back(torch::randn({batch, c, side, side}, f64()));
    f.input.push_back(torch::randn({batch, c, side, side}, f64()));
    f.ids.push_back(torch::randperm(side * side, torch::kLong).narrow(0, 0, 20));
  }
  return f;
}

/// Two pooling levels (20 -> 10 -> 2 nodes: ratios 1/2 and 1/4 of the level before) with
/// distinct level weights, random biases.
GraphNCELoss two_level_loss(bool average_levels) {
  GraphNCELoss loss(GraphNCELossOptions({4, 6})
                        .num_patches(20)
                        .nc(8)
                        .pooling_levels(2)
                        .down_scale(2)
                        .level_weights({1.0, 0.5, 0.25})
                        .average_levels(average_levels)
                        .adjacency(CosineAdjacencyOptions().threshold(0.1).comparison(Comparison::kGreater))
                        .init_std(0.3));
  loss->to(torch::kFloat64);
  torch::NoGradGuard g;
  for (auto& p : loss->named_parameters())
    if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.1, 0.1);
  return loss;
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return patchgcl_test::max_abs(a, b); }
}  // namespace

TEST_CASE("inspect's per-level InfoNCE values recombine to forward's loss", "[inspect]") {
  for (bool average : {true, false}) {
    INFO("average_levels " << average);
    auto loss = two_level_loss(average);
    auto f = features(3, 5);
    auto forward = loss->forward(f.output, f.input, f.ids);
    auto record = loss->inspect(f.output, f.input, f.ids);
    REQUIRE(record.layers.size() == 2);
    // Same computation, but LibTorch's multi-threaded reductions may split the sums differently
    // from one call to the next under load (seen with the 2.13 wheel): equal to 1e-12, not bit for bit.
    CHECK(record.loss.item<double>() == Approx(forward.item<double>()).epsilon(1e-12));
    double mean = 0;
    for (const auto& layer : record.layers) {
      REQUIRE(layer.levels.size() == 3);
      double sum = 0;
      for (size_t p = 0; p < layer.levels.size(); ++p) {
        CHECK(layer.levels[p].weight == std::vector<double>{1.0, 0.5, 0.25}[p]);
        CHECK(layer.levels[p].info_nce.dim() == 0);
        sum += layer.levels[p].weight * layer.levels[p].info_nce.item<double>();
      }
      if (average) sum /= 3.0;
      CHECK(layer.loss.item<double>() == Approx(sum).epsilon(1e-14));
      mean += sum / 2.0;
    }
    CHECK(forward.item<double>() == Approx(mean).epsilon(1e-12));
    CHECK_FALSE(record.loss.requires_grad());
  }
}

TEST_CASE("inspect records the graphs forward pools: kept nodes, scores, A and Abar rebuilt step by step",
          "[inspect]") {
  auto loss = two_level_loss(true);
  auto f = features(2, 9);
  auto record = loss->inspect(f.output, f.input, f.ids);
  const auto& o = loss->options;
  torch::NoGradGuard no_grad;
  for (size_t l = 0; l < 2; ++l) {
    INFO("layer " << l);
    // Steps 1-5 of GraphNCELoss with the library's public pieces and the loss's own parameters.
    auto unit = [&](const torch::Tensor& x) { return F::l2_normalize(x, o.l2_eps()); };
    auto v = unit(loss->embeds[l](F::sample_patches(f.output[l], f.ids[l])));
    auto z = unit(loss->embeds[l](F::sample_patches(f.input[l], f.ids[l])));
    auto adjacency = F::cosine_adjacency(z, o.adjacency());
    auto abar = F::normalize_adjacency(adjacency, o.normalize());
    const auto& layer = record.layers[l];
    // inspect records forward's fused computation (every layer and both graphs in batched
    // products); the steps here run layer by layer, so their floats agree to rounding, not bit for
    // bit (float64 values of order 1 after a few dozen roundings: 1e-12 is thousands of ulps).
    // The discrete steps agree exactly where no cosine lies near A's threshold and no two scores
    // near each other: checked below, far beyond rounding.
    REQUIRE(patchgcl_test::distance_to(torch::matmul(z, z.transpose(1, 2)), o.adjacency().threshold()) > 1e-9);
    CHECK(torch::equal(layer.levels[0].adjacency, adjacency));
    CHECK(max_abs(layer.levels[0].abar, abar) < 1e-15);
    CHECK(torch::equal(layer.levels[0].degrees, adjacency.sum(-1)));
    CHECK(!layer.levels[0].scores.defined());
    CHECK(!layer.levels[0].kept.defined());
    auto level = loss->gnns[l]->forward_shared(v, z, abar);
    v = unit(level.first);
    z = unit(level.second);
    auto nodes = torch::arange(20, torch::kLong).expand({2, 20});
    CHECK(torch::equal(layer.levels[0].nodes, nodes));
    for (int64_t p = 1; p <= 2; ++p) {
      INFO("level " << p);
      auto pool = loss->pools[l]->ptr<TopKPoolImpl>(p - 1);
      auto pooled = pool->forward(v, z, adjacency);
      const auto& rec = layer.levels[static_cast<size_t>(p)];
      const int64_t before = z.size(1), kept = pool->kept_nodes(before);  // 20 -> 10 -> 2 (ratio 1/2, then 1/4)
      // Every node of the previous level has a score (sigmoids in (0, 1), to rounding as above).
      REQUIRE(rec.scores.sizes() == torch::IntArrayRef({2, before}));
      CHECK(max_abs(rec.scores, pooled.node_scores) < 1e-12);
      // No two scores lie within rounding of each other, so both computations rank the nodes alike:
      // the kept ones are the top k of the recorded scores (the values forward's topk ranked), and
      // the same nodes in the same order here, which pool the same rows and columns of A.
      REQUIRE(patchgcl_test::smallest_gap(rec.scores) > 1e-9);
      REQUIRE(rec.kept.sizes() == torch::IntArrayRef({2, kept}));
      CHECK(torch::equal(std::get<1>(rec.scores.topk(kept, -1)), rec.kept));
      CHECK(torch::equal(rec.kept, pooled.indices));
      CHECK(torch::equal(rec.adjacency, pooled.adjacency));
      CHECK(max_abs(rec.scores.gather(1, rec.kept), pooled.scores) < 1e-12);
      nodes = nodes.gather(1, pooled.indices);
      CHECK(torch::equal(rec.nodes, nodes));
      abar = F::normalize_adjacency(pooled.adjacency, o.normalize());
      CHECK(max_abs(rec.abar, abar) < 1e-15);
      level = loss->gnn_pools[l]->ptr<TAGConvImpl>(p - 1)->forward_shared(pooled.output, pooled.input, abar);
      v = unit(level.first);
      z = unit(level.second);
      CHECK(rec.info_nce.item<double>() == Approx(F::info_nce(v, z, o.info_nce()).item<double>()).epsilon(1e-12));
      adjacency = pooled.adjacency;
    }
  }
}

TEST_CASE("inspect places the sampled patches on the feature map and draws them as forward does", "[inspect]") {
  auto loss = two_level_loss(true);
  auto f = features(1, 3);
  auto record = loss->inspect(f.output, f.input, f.ids);
  for (size_t l = 0; l < 2; ++l) {
    const auto& layer = record.layers[l];
    const int64_t side = l == 0 ? 8 : 6;
    CHECK(layer.height == side);
    CHECK(layer.width == side);
    CHECK(torch::equal(layer.patch_ids, f.ids[l]));
    CHECK(torch::equal(layer.rows * side + layer.cols, f.ids[l]));
    CHECK(layer.cols.max().item<int64_t>() < side);
  }
  // Without ids: the same generator state gives forward's ids, hence forward's loss.
  torch::manual_seed(42);
  auto forward = loss->forward(f.output, f.input);
  torch::manual_seed(42);
  auto drawn = loss->inspect(f.output, f.input);
  // To 1e-12, not bit for bit, as in the first test case: other ids would change it by far more.
  CHECK(drawn.loss.item<double>() == Approx(forward.item<double>()).epsilon(1e-12));
  // Non-square maps: (row, col) = (id / W, id % W).
  auto wide_out = std::vector<torch::Tensor>{torch::randn({1, 4, 5, 7}, f64()), torch::randn({1, 6, 3, 9}, f64())};
  auto wide_in = std::vector<torch::Tensor>{torch::randn({1, 4, 5, 7}, f64()), torch::randn({1, 6, 3, 9}, f64())};
  auto wide = loss->inspect(wide_out, wide_in, {torch::tensor({0L, 6L, 7L, 34L}), torch::tensor({8L, 9L, 26L, 10L})});
  CHECK(torch::equal(wide.layers[0].rows, torch::tensor({0L, 0L, 1L, 4L})));
  CHECK(torch::equal(wide.layers[0].cols, torch::tensor({0L, 6L, 0L, 6L})));
  CHECK(torch::equal(wide.layers[1].rows, torch::tensor({0L, 1L, 2L, 1L})));
}

TEST_CASE("inspect rejects bad arguments as forward does, naming them", "[inspect]") {
  auto loss = two_level_loss(true);
  auto f = features(1, 1);
  CHECK_THROWS_WITH(loss->inspect({f.output[0]}, f.input, f.ids), Catch::Contains("expected 2 output feature maps"));
  CHECK_THROWS_WITH(loss->inspect(f.output, f.input, {f.ids[0]}), Catch::Contains("expected 2 patch id tensors"));
  auto bad = f.output;
  bad[1] = torch::randn({1, 5, 6, 6}, f64());
  CHECK_THROWS_WITH(loss->inspect(bad, f.input, f.ids), Catch::Contains("output_features[1]"));
}

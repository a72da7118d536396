// TopKPool (Eq. 5-8).
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
using patchgcl_test::f64;

namespace {
TopKPool make_pool(TopKPoolOptions o) {
  TopKPool pool(o);
  pool->to(torch::kFloat64);
  return pool;
}
void set_p(TopKPool& pool, std::vector<double> p, double b) {
  torch::NoGradGuard g;
  pool->proj->weight.copy_(torch::tensor(p, f64()).view({1, -1}));
  if (pool->options.bias()) pool->proj->bias.fill_(b);
}
// path graph 0-1-2-3-4 with self loops
torch::Tensor path5() {
  auto a = torch::eye(5, f64());
  for (int i = 0; i < 4; ++i) a[i][i + 1] = a[i + 1][i] = 1.0;
  return a;
}
}  // namespace

TEST_CASE("TopKPool keeps the K best-scored input nodes in both graphs, weighted by sigma(S)", "[topk_pool]") {
  auto pool = make_pool(TopKPoolOptions(2).k(2).pooled_adjacency(PooledAdjacency::kInduced));
  set_p(pool, {1.0, -1.0}, 0.25);
  auto z = torch::tensor({0.0, 1.0, 2.0, 0.0, 1.0, 1.0, 0.5, -1.0, -1.0, 0.0}, f64()).view({5, 2});
  auto v = torch::arange(10, f64()).view({5, 2});
  auto out = pool(v, z, path5());
  // S = z0 - z1 + 0.25 = [-0.75, 2.25, 0.25, 1.75, -0.75] (exact in binary): nodes 1 and 3, in that order
  CHECK(torch::equal(out.indices, torch::tensor({1, 3}, torch::kLong)));
  auto sig = torch::sigmoid(torch::tensor({2.25, 1.75}, f64()));
  CHECK(patchgcl_test::max_abs(out.scores, sig) < 1e-15);
  CHECK(patchgcl_test::max_abs(out.input, z.index_select(0, out.indices) * sig.unsqueeze(1)) < 1e-15);
  CHECK(patchgcl_test::max_abs(out.output, v.index_select(0, out.indices) * sig.unsqueeze(1)) < 1e-15);
  // induced subgraph of the path on {1, 3}: no edge between them
  CHECK(torch::equal(out.adjacency, torch::eye(2, f64())));
}

TEST_CASE("TopKPool's two-hop pooled adjacency (released code) connects nodes two steps apart", "[topk_pool]") {
  auto pool = make_pool(TopKPoolOptions(2).k(3).pooled_adjacency(PooledAdjacency::kTwoHop));
  set_p(pool, {1.0, 0.0}, 0.0);
  auto z = torch::tensor({3.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 0.0}, f64()).view({5, 2});
  auto out = pool(z, z, path5());
  CHECK(torch::equal(out.indices, torch::tensor({0, 2, 4}, torch::kLong)));
  // bool(A A) on the path: 0-2 and 2-4 are two hops apart, 0-4 four
  CHECK(torch::equal(out.adjacency, torch::tensor({1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0}, f64()).view({3, 3})));
  auto induced = make_pool(TopKPoolOptions(2).k(3).pooled_adjacency(PooledAdjacency::kInduced));
  set_p(induced, {1.0, 0.0}, 0.0);
  CHECK(torch::equal(induced(z, z, path5()).adjacency, torch::eye(3, f64())));
}

TEST_CASE("TopKPool with PyG's semantics: tanh of the score divided by ||p||, no bias", "[topk_pool]") {
  auto pool =
      make_pool(TopKPoolOptions(2).ratio(0.5).activation(ScoreActivation::kTanh).bias(false).divide_by_norm(true));
  set_p(pool, {3.0, 4.0}, 0.0);
  CHECK(pool->named_parameters().size() == 1);
  torch::manual_seed(2);
  auto z = torch::randn({6, 2}, f64());
  auto out = pool(z, z, torch::eye(6, f64()));
  auto expected = torch::tanh(z.mv(torch::tensor({3.0, 4.0}, f64())) / 5.0);
  auto top = expected.topk(3);
  // mv and the pool's product may round differently: they rank the nodes alike because no two
  // scores lie within rounding of each other (checked, far beyond it).
  REQUIRE(patchgcl_test::smallest_gap(expected) > 1e-9);
  CHECK(torch::equal(out.indices, std::get<1>(top)));
  CHECK(patchgcl_test::max_abs(out.scores, std::get<0>(top)) < 1e-15);
}

TEST_CASE("TopKPool keeps max(2, floor(ratio N)) nodes", "[topk_pool]") {
  CHECK(TopKPool(TopKPoolOptions(4).ratio(0.25))->kept_nodes(256) == 64);
  CHECK(TopKPool(TopKPoolOptions(4).ratio(1.0 / 3.0))->kept_nodes(255) == 85);
  CHECK(TopKPool(TopKPoolOptions(4).ratio(0.25))->kept_nodes(5) == 2);
  CHECK(TopKPool(TopKPoolOptions(4).k(7))->kept_nodes(100) == 7);
}

TEST_CASE("TopKPool on a batch equals one call per image", "[topk_pool]") {
  auto pool = make_pool(TopKPoolOptions(4).ratio(0.5).init_std(1.0));
  torch::manual_seed(3);
  auto z = torch::randn({3, 8, 4}, f64()), v = torch::randn({3, 8, 4}, f64());
  auto a = functional::cosine_adjacency(z);
  auto batched = pool(v, z, a);
  CHECK(batched.output.sizes() == torch::IntArrayRef({3, 4, 4}));
  // One product for the batch's 24 nodes and one per image may take other BLAS kernels, so the
  // scores may differ in their last bits (float64, |S| of a few units): the outputs (scores times
  // |v| of a few units) agree to a few ulps, and the kept nodes exactly, as no two scores of an
  // image lie within rounding of each other (checked, far beyond it); A_p is then the same gather
  // of the same a[b].
  const auto scores = torch::sigmoid(torch::matmul(z, pool->proj->weight.t()).squeeze(-1) + pool->proj->bias);
  REQUIRE(patchgcl_test::smallest_gap(scores) > 1e-9);
  for (int64_t b = 0; b < 3; ++b) {
    auto single = pool(v[b], z[b], a[b]);
    CHECK(torch::equal(batched.indices[b], single.indices));
    CHECK(torch::equal(batched.adjacency[b], single.adjacency));
    CHECK(patchgcl_test::max_abs(batched.output[b], single.output) < 1e-14);
  }
}

TEST_CASE("TopKPool gradients w.r.t. the features and p match finite differences", "[topk_pool]") {
  auto pool = make_pool(TopKPoolOptions(3).k(3).init_std(0.7));
  torch::manual_seed(4);
  auto z = torch::randn({6, 3}, f64()).requires_grad_();
  auto v = torch::randn({6, 3}, f64()).requires_grad_();
  auto a = functional::cosine_adjacency(z);
  auto w = torch::randn({3, 3}, f64());
  auto f = [&] {
    auto out = pool(v, z, a);
    return ((out.output + 0.5 * out.input) * w).sum();
  };
  CHECK(patchgcl_test::gradient_error(f, v) < 1e-7);
  CHECK(patchgcl_test::gradient_error(f, z) < 1e-7);
  CHECK(patchgcl_test::gradient_error(f, pool->proj->weight) < 1e-7);
  CHECK(patchgcl_test::gradient_error(f, pool->proj->bias) < 1e-7);
}

TEST_CASE("TopKPool rejects k larger than N and mismatched inputs", "[topk_pool]") {
  auto pool = TopKPool(TopKPoolOptions(4).k(10));
  CHECK_THROWS_WITH(pool(torch::randn({6, 4}), torch::randn({6, 4}), torch::eye(6)),
                    Catch::Contains("k = 10") && Catch::Contains("N = 6"));
  CHECK_THROWS_WITH(TopKPool(TopKPoolOptions(4).k(1)), Catch::Contains("`k` must be >= 2"));
  CHECK_THROWS_WITH(TopKPool(TopKPoolOptions(4).ratio(0.0)), Catch::Contains("ratio"));
  auto ok = TopKPool(TopKPoolOptions(4).k(2));
  CHECK_THROWS_WITH(ok(torch::randn({6, 4}), torch::randn({6, 3}), torch::eye(6)), Catch::Contains("same shape"));
  CHECK_THROWS_WITH(ok(torch::randn({6, 3}), torch::randn({6, 3}), torch::eye(6)), Catch::Contains("4 channels"));
  CHECK_THROWS_WITH(ok(torch::randn({6, 4}), torch::randn({6, 4}), torch::eye(7)), Catch::Contains("adjacency"));
}

TEST_CASE("functional::topk_pool computes TopKPool's forward from its pooling vector", "[topk_pool]") {
  const bool batched = GENERATE(true, false);
  auto pool = make_pool(TopKPoolOptions(4).ratio(0.5).init_std(1.0));
  torch::manual_seed(5);
  auto z = torch::randn({2, 8, 4}, f64()), v = torch::randn({2, 8, 4}, f64());
  auto a = functional::cosine_adjacency(z);
  if (!batched) {
    z = z[0];
    v = v[0];
    a = a[0];
  }
  auto by_module = pool(v, z, a);
  auto pooled = functional::topk_pool(v, z, a, pool->proj->weight, pool->proj->bias, pool->options);
  CHECK(torch::equal(pooled.indices, by_module.indices));
  CHECK(torch::equal(pooled.adjacency, by_module.adjacency));
  CHECK(patchgcl_test::max_abs(pooled.scores, by_module.scores) < 1e-15);
  CHECK(patchgcl_test::max_abs(pooled.node_scores, by_module.node_scores) < 1e-15);
  CHECK(patchgcl_test::max_abs(pooled.output, by_module.output) < 1e-15);
  CHECK(patchgcl_test::max_abs(pooled.input, by_module.input) < 1e-15);
}

TEST_CASE("functional::topk_pool rejects a pooling vector, options or graphs that do not fit", "[topk_pool]") {
  auto x = torch::randn({6, 4});
  auto p = torch::randn({1, 4});
  const auto o = TopKPoolOptions(4).k(2);
  CHECK_THROWS_WITH(functional::topk_pool(x, x, torch::eye(6), torch::randn({1, 3}), {}, o),
                    Catch::Contains("`weight` must be [1, C] = [1, 4]") && Catch::Contains("[1, 3]"));
  CHECK_THROWS_WITH(functional::topk_pool(x, x, torch::eye(6), p, torch::zeros({2}), o), Catch::Contains("`bias`"));
  CHECK_THROWS_WITH(functional::topk_pool(x, x, torch::eye(6), p.to(torch::kFloat64), {}, o),
                    Catch::Contains("same dtype"));
  CHECK_THROWS_WITH(functional::topk_pool(x, x, torch::eye(6), p, {}, TopKPoolOptions(4).k(7)),
                    Catch::Contains("topk_pool") && Catch::Contains("k = 7") && Catch::Contains("N = 6"));
  CHECK_THROWS_WITH(functional::topk_pool(x, x, torch::eye(6), p, {}, TopKPoolOptions(4).ratio(1.5)),
                    Catch::Contains("ratio"));
  CHECK_THROWS_WITH(functional::topk_pool(x, x, torch::eye(6), p, {}, TopKPoolOptions(3).k(2)),
                    Catch::Contains("3 channels"));
  CHECK(functional::topk_pool(x, x, torch::eye(6), p, {}, o).output.sizes() == torch::IntArrayRef({2, 4}));
}

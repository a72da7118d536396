// Eq. 1 (cosine_adjacency) and the normalisation of A into Abar.
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_test::f64;

namespace {
// Four 2-D features with cosines: (0,1) 0.707, (0,2) 0, (0,3) -1, (1,2) 0.707, (1,3) -0.707, (2,3) 0.
// The zero cosines are exactly 0 in any BLAS (every product has a zero factor) and the others lie
// far from the thresholds below, so the 0/1 results are exact.
torch::Tensor four_points() { return torch::tensor({1.0, 0.0, 2.0, 2.0, 0.0, 3.0, -0.5, 0.0}, f64()).view({4, 2}); }
torch::Tensor mat(std::vector<double> v, int64_t n) { return torch::tensor(v, f64()).view({n, n}); }
}  // namespace

TEST_CASE("cosine_adjacency connects nodes whose cosine reaches the threshold (Eq. 1)", "[adjacency]") {
  auto x = four_points();
  SECTION(">= as the paper writes it keeps cosine exactly equal to t") {
    auto a = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.0));
    CHECK(torch::equal(a, mat({1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1}, 4)));
  }
  SECTION("> as the released code computes it drops cosine exactly equal to t") {
    auto a = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.0).comparison(Comparison::kGreater));
    CHECK(torch::equal(a, mat({1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1}, 4)));
  }
  SECTION("a high threshold leaves only the self loops") {
    auto a = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.9));
    CHECK(torch::equal(a, torch::eye(4, f64())));
  }
  SECTION("the diagonal policy overrides self loops") {
    auto zero = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.5).diagonal(Diagonal::kZero));
    CHECK(zero.diagonal().sum().item<double>() == 0.0);
    CHECK(zero[0][1].item<double>() == 1.0);
  }
}

TEST_CASE("cosine_adjacency is scale invariant, gradient free and batched per image", "[adjacency]") {
  torch::manual_seed(1);
  auto x = torch::randn({3, 10, 5}, f64()).requires_grad_();
  auto a = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.1));
  CHECK_FALSE(a.requires_grad());
  CHECK(a.sizes() == torch::IntArrayRef({3, 10, 10}));
  // The cosines of x * 7.5 (not an exact scaling), of one image (mm instead of bmm: maybe another
  // BLAS kernel) and of (j, i) instead of (i, j) round differently from a's, by ~1e-16. The 0/1
  // entries are still equal because no cosine lies near the threshold: checked, far beyond rounding.
  const auto unit = x.detach() / x.detach().norm(2, -1, true);
  REQUIRE(patchgcl_test::distance_to(torch::matmul(unit, unit.transpose(1, 2)), 0.1) > 1e-9);
  CHECK(torch::equal(a, F::cosine_adjacency(x.detach() * 7.5, CosineAdjacencyOptions().threshold(0.1))));
  for (int64_t b = 0; b < 3; ++b)
    CHECK(torch::equal(a[b], F::cosine_adjacency(x[b], CosineAdjacencyOptions().threshold(0.1))));
  CHECK(torch::equal(a, a.transpose(1, 2)));
}

TEST_CASE("cosine_adjacency handles zero vectors and duplicated features without NaN", "[adjacency]") {
  auto x = torch::zeros({4, 3}, f64());
  x[1] = torch::tensor({1.0, 2.0, 3.0}, f64());
  x[2] = torch::tensor({1.0, 2.0, 3.0}, f64());  // duplicate of node 1
  auto a = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.1));
  CHECK(torch::isfinite(a).all().item<bool>());
  CHECK(a[1][2].item<double>() == 1.0);
  CHECK(a[0].sum().item<double>() == 0.0);  // a zero vector has cosine 0 with everything, itself included
  auto forced = F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.1).diagonal(Diagonal::kOne));
  CHECK(forced[0][0].item<double>() == 1.0);
}

TEST_CASE("cosine_adjacency computes half precision in float32", "[adjacency]") {
  auto x = torch::randn({8, 4}).to(torch::kHalf);
  auto a = F::cosine_adjacency(x);
  CHECK(a.scalar_type() == torch::kFloat32);
  CHECK(torch::equal(a, F::cosine_adjacency(x.to(torch::kFloat32))));  // one computation: half converted first
}

TEST_CASE("cosine_adjacency rejects bad arguments with a message naming them", "[adjacency]") {
  CHECK_THROWS_WITH(F::cosine_adjacency(four_points(), CosineAdjacencyOptions().threshold(1.5)),
                    Catch::Contains("threshold") && Catch::Contains("[-1, 1]") && Catch::Contains("1.5"));
  CHECK_THROWS_WITH(F::cosine_adjacency(torch::randn({2, 3, 4, 5})),
                    Catch::Contains("features") && Catch::Contains("[B, N, C]"));
  CHECK_THROWS_WITH(F::cosine_adjacency(torch::ones({3, 4}, torch::kLong)), Catch::Contains("floating-point"));
  CHECK_THROWS_WITH(F::cosine_adjacency(torch::ones({0, 4})), Catch::Contains("empty"));
}

TEST_CASE("normalize_adjacency is D^-1/2 (A + sI) D^-1/2 with degrees clamped to 1", "[adjacency]") {
  auto a = mat({1, 1, 0, 1, 1, 1, 0, 1, 1}, 3);  // path 0-1-2 with Eq. 1's self loops
  auto dense = [](const torch::Tensor& m) {
    auto d = m.sum(1).clamp_min(1.0).pow(-0.5);
    return torch::diag(d).mm(m).mm(torch::diag(d));
  };
  SECTION("one self loop") {
    CHECK(patchgcl_test::max_abs(F::normalize_adjacency(a), dense(a)) < 1e-15);
    auto no_loops = a - torch::eye(3, f64());
    CHECK(patchgcl_test::max_abs(F::normalize_adjacency(no_loops), dense(a)) < 1e-15);
  }
  SECTION("the released code's double self loop is A + I") {
    auto abar = F::normalize_adjacency(a, NormalizeAdjacencyOptions().self_loops(SelfLoops::kDouble));
    auto m = a + torch::eye(3, f64());
    CHECK(patchgcl_test::max_abs(abar, dense(m)) < 1e-15);
    // node 0: degree 3 (loop of weight 2 + edge), node 1: degree 4
    CHECK(abar[0][0].item<double>() == Approx(2.0 / 3.0).epsilon(1e-14));
    CHECK(abar[0][1].item<double>() == Approx(1.0 / std::sqrt(12.0)).epsilon(1e-14));
  }
  SECTION("no self loops: an isolated node keeps a zero row, not NaN") {
    auto iso = mat({0, 0, 0, 0, 0, 1, 0, 1, 0}, 3);
    auto abar = F::normalize_adjacency(iso, NormalizeAdjacencyOptions().self_loops(SelfLoops::kNone));
    CHECK(torch::isfinite(abar).all().item<bool>());
    CHECK(abar[0].abs().sum().item<double>() == 0.0);
    CHECK(abar[1][2].item<double>() == 1.0);
  }
  SECTION("random walk rows sum to one") {
    auto abar = F::normalize_adjacency(a, NormalizeAdjacencyOptions().normalization(Normalization::kRandomWalk));
    CHECK(patchgcl_test::max_abs(abar.sum(1), torch::ones({3}, f64())) < 1e-15);
    CHECK(abar[0][1].item<double>() == Approx(0.5));
    CHECK(abar[1][0].item<double>() == Approx(1.0 / 3.0));
  }
}

TEST_CASE("normalize_adjacency of edgeless and complete graphs", "[adjacency]") {
  const int64_t n = 5;
  CHECK(torch::equal(F::normalize_adjacency(torch::eye(n, f64())), torch::eye(n, f64())));
  auto full = F::normalize_adjacency(torch::ones({2, n, n}, f64()));
  CHECK(patchgcl_test::max_abs(full, torch::full({2, n, n}, 1.0 / n, f64())) < 1e-15);
  auto from_bool = F::normalize_adjacency(torch::ones({n, n}, torch::kBool));
  CHECK(from_bool.scalar_type() == torch::kFloat32);
  CHECK_THROWS_WITH(F::normalize_adjacency(torch::ones({3, 4})), Catch::Contains("square"));
}

// functional::laplacian_eigenvectors: the spectrum of the patch graph drawn in Fig. 9(c).
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_test::f64;

namespace {
/// Abar of Eq. 1's graph on random features: symmetric normalisation, one self loop.
torch::Tensor random_abar(std::vector<int64_t> shape, uint64_t seed, double threshold = 0.1) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto z = at::randn(shape, gen, f64());
  return F::normalize_adjacency(F::cosine_adjacency(z, CosineAdjacencyOptions().threshold(threshold)));
}
double max_abs(const torch::Tensor& a) { return a.abs().max().item<double>(); }
}  // namespace

TEST_CASE("laplacian_eigenvectors returns eigenpairs of L = I - Abar: L v = lambda v, orthonormal, ascending",
          "[laplacian]") {
  auto abar = random_abar({24, 6}, 7);
  const int64_t k = 24;
  auto pairs = F::laplacian_eigenvectors(abar, k);
  REQUIRE(pairs.eigenvalues.sizes() == torch::IntArrayRef({k}));
  REQUIRE(pairs.eigenvectors.sizes() == torch::IntArrayRef({24, k}));
  auto laplacian = F::normalized_laplacian(abar);
  auto residual = laplacian.mm(pairs.eigenvectors) - pairs.eigenvectors * pairs.eigenvalues.unsqueeze(0);
  CHECK(max_abs(residual) < 1e-12);
  CHECK(max_abs(pairs.eigenvectors.t().mm(pairs.eigenvectors) - torch::eye(k, f64())) < 1e-12);
  auto steps = pairs.eigenvalues.slice(0, 1) - pairs.eigenvalues.slice(0, 0, -1);
  CHECK(steps.min().item<double>() >= 0.0);
  // The normalised Laplacian's spectrum lies in [0, 2].
  CHECK(pairs.eigenvalues.min().item<double>() > -1e-12);
  CHECK(pairs.eigenvalues.max().item<double>() < 2.0 + 1e-12);
  // All N eigenpairs rebuild L.
  auto rebuilt = pairs.eigenvectors.mm(torch::diag(pairs.eigenvalues)).mm(pairs.eigenvectors.t());
  CHECK(max_abs(rebuilt - laplacian) < 1e-12);
}

TEST_CASE("the first eigenpair is 0 with eigenvector D^1/2 1, and each connected component adds a zero",
          "[laplacian]") {
  // Two components: a path 0-1-2 and an edge 3-4, with Eq. 1's self loops.
  auto a = torch::zeros({5, 5}, f64());
  for (auto [i, j] : {std::pair<int, int>{0, 1}, {1, 2}, {3, 4}}) {
    a[i][j] = 1.0;
    a[j][i] = 1.0;
  }
  a.diagonal().fill_(1.0);
  auto pairs = F::laplacian_eigenvectors(F::normalize_adjacency(a), 3);
  CHECK(std::abs(pairs.eigenvalues[0].item<double>()) < 1e-14);
  CHECK(std::abs(pairs.eigenvalues[1].item<double>()) < 1e-14);
  // Path of 3 with loops: degrees 2, 3, 2; its spectrum is 0, 1/2, 7/6 (numpy eigvalsh
  // of I - D^-1/2 M D^-1/2); the edge's is 0, 1.
  CHECK(pairs.eigenvalues[2].item<double>() == Approx(0.5).epsilon(1e-13));
  // The zero eigenspace is spanned by D^1/2 1 restricted to each component.
  auto degree_sqrt = a.sum(1).sqrt();
  auto basis = torch::zeros({5, 2}, f64());
  basis.slice(0, 0, 3).select(1, 0).copy_(degree_sqrt.slice(0, 0, 3) / degree_sqrt.slice(0, 0, 3).norm());
  basis.slice(0, 3, 5).select(1, 1).copy_(degree_sqrt.slice(0, 3, 5) / degree_sqrt.slice(0, 3, 5).norm());
  auto zero_space = pairs.eigenvectors.slice(1, 0, 2);
  // Same subspace: the projections onto each other are the identity.
  CHECK(max_abs(basis.t().mm(zero_space).mm(zero_space.t().mm(basis)) - torch::eye(2, f64())) < 1e-12);

  SECTION("a connected graph has one zero eigenvalue, eigenvector D^1/2 1 with a positive sign") {
    auto full = torch::ones({4, 4}, f64());
    full[0][3] = full[3][0] = 0.0;
    auto p = F::laplacian_eigenvectors(F::normalize_adjacency(full), 2);
    CHECK(std::abs(p.eigenvalues[0].item<double>()) < 1e-14);
    CHECK(p.eigenvalues[1].item<double>() > 0.1);
    auto d = full.sum(1).sqrt();
    CHECK(max_abs(p.eigenvectors.select(1, 0) - d / d.norm()) < 1e-14);
  }
}

TEST_CASE("laplacian_eigenvectors of a batch equals the eigenpairs of each graph alone", "[laplacian]") {
  auto abar = random_abar({3, 16, 5}, 11);
  auto batched = F::laplacian_eigenvectors(abar, 4);
  REQUIRE(batched.eigenvalues.sizes() == torch::IntArrayRef({3, 4}));
  REQUIRE(batched.eigenvectors.sizes() == torch::IntArrayRef({3, 16, 4}));
  for (int64_t b = 0; b < 3; ++b) {
    auto single = F::laplacian_eigenvectors(abar[b], 4);
    // Distinct eigenvalues (random graph): the eigenvectors are unique up to the fixed sign.
    auto gaps = single.eigenvalues.slice(0, 1) - single.eigenvalues.slice(0, 0, -1);
    REQUIRE(gaps.min().item<double>() > 1e-6);
    CHECK(max_abs(batched.eigenvalues[b] - single.eigenvalues) < 1e-12);
    CHECK(max_abs(batched.eigenvectors[b] - single.eigenvectors) < 1e-10);
    // The sign convention: each column's entry of largest magnitude is positive.
    auto v = single.eigenvectors;
    auto at_max = v.gather(0, v.abs().argmax(0, true));
    CHECK(at_max.min().item<double>() > 0.0);
  }
}

TEST_CASE("laplacian_eigenvectors keeps float32 and computes half precision in float32", "[laplacian]") {
  auto abar = random_abar({2, 12, 4}, 3);
  auto ref = F::laplacian_eigenvectors(abar, 3);
  auto f32 = F::laplacian_eigenvectors(abar.to(torch::kFloat32), 3);
  CHECK(f32.eigenvalues.scalar_type() == torch::kFloat32);
  CHECK(max_abs(f32.eigenvalues.to(torch::kFloat64) - ref.eigenvalues) < 1e-5);
  auto half = F::laplacian_eigenvectors(abar.to(torch::kHalf), 3);
  CHECK(half.eigenvectors.scalar_type() == torch::kFloat32);
  CHECK(max_abs(half.eigenvalues.to(torch::kFloat64) - ref.eigenvalues) < 1e-2);
}

TEST_CASE("laplacian_eigenvectors rejects bad arguments with a message naming them", "[laplacian]") {
  auto abar = random_abar({6, 3}, 5);
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(torch::Tensor(), 1),
                    Catch::Contains("`abar`") && Catch::Contains("undefined"));
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(torch::ones({6}, f64()), 1),
                    Catch::Contains("`abar`") && Catch::Contains("[B, N, N] or [N, N]") && Catch::Contains("[6]"));
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(torch::ones({6, 5}, f64()), 1),
                    Catch::Contains("`abar`") && Catch::Contains("square") && Catch::Contains("[6, 5]"));
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(torch::ones({6, 6}, torch::kLong), 1),
                    Catch::Contains("`abar`") && Catch::Contains("floating-point") && Catch::Contains("Long"));
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(torch::ones({0, 0}, f64()), 1), Catch::Contains("empty"));
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(abar, 0),
                    Catch::Contains("`k`") && Catch::Contains("[1, 6]") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(abar, 7),
                    Catch::Contains("`k`") && Catch::Contains("[1, 6]") && Catch::Contains("got 7"));
  auto nan = abar.clone();
  nan[1][2] = std::nan("");
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(nan, 2), Catch::Contains("`abar`") && Catch::Contains("NaN"));
  auto walk =
      F::normalize_adjacency(F::cosine_adjacency(torch::randn({6, 3}, f64()), CosineAdjacencyOptions().threshold(-0.2)),
                             NormalizeAdjacencyOptions().normalization(Normalization::kRandomWalk));
  walk[0][1] = walk[0][1] + 0.25;  // certainly asymmetric, whatever the random degrees
  CHECK_THROWS_WITH(F::laplacian_eigenvectors(walk, 2), Catch::Contains("`abar`") && Catch::Contains("symmetric"));
  // The checks are host scans: FiniteCheck::kNever skips them (as on CUDA by default).
  CHECK_NOTHROW(F::laplacian_eigenvectors(walk, 2, FiniteCheck::kNever));
}

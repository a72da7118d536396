// The corner cases of docs/reliability.md, one by one: fixed inputs at the edges of the domain
// (magnitudes 1e-30..1e30, zero vectors, overflowing similarities, tied scores), next to the
// random-input property test (tests/test_properties.cpp).
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

#include "properties/generator.hpp"

#include <cmath>
#include <vector>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_property::distinct;
using patchgcl_property::kNaN;

TEST_CASE("l2_normalize gives unit vectors for magnitudes from 1e-30 to 1e30 and matches the plain formula",
          "[properties]") {
  auto x = torch::randn({5, 16});
  for (double scale : {1e-30, 1e-20, 1.0, 1e20, 1e30}) {
    auto y = F::l2_normalize(x * scale, 1e-35);  // the squares of 1e-30 and 1e30 leave float32
    CHECK(torch::allclose(y.norm(2, -1), torch::ones({5}), 1e-5, 1e-6));
    CHECK(torch::allclose(y, x / x.norm(2, -1, true), 1e-5, 1e-6));
  }
  // within the range where the plain formula is representable, the same bits: l2_normalize divides
  // by a power of two first, which is exact, so its norm and quotients round as the plain formula's
  auto plain = x / x.norm(2, -1, true).clamp_min(1e-12);
  CHECK(torch::equal(F::l2_normalize(x), plain));
  // a vector shorter than eps is divided by eps, as torch.nn.functional.normalize does
  auto short_vector = torch::full({1, 4}, 1e-15);
  CHECK(F::l2_normalize(short_vector, 1e-12).max().item<double>() == Approx(1e-3).epsilon(1e-5));
}

TEST_CASE("l2_normalize of a zero vector is zero with zero gradient, in every dtype and eps mode", "[properties]") {
  for (auto dtype : {torch::kFloat32, torch::kFloat64, torch::kHalf, torch::kBFloat16}) {
    for (auto mode : {F::L2Eps::kClamp, F::L2Eps::kAdd}) {
      auto x = torch::zeros({3, 4}, dtype).requires_grad_(true);
      auto y = F::l2_normalize(x, 1e-7, mode);
      CHECK(y.scalar_type() == dtype);
      CHECK(y.abs().max().item<double>() == 0.0);
      (y * torch::ones_like(y)).sum().backward();
      CHECK(x.grad().abs().max().item<double>() == 0.0);
    }
  }
}

TEST_CASE("l2_normalize's fused backward equals the composed formula's, to second order", "[properties]") {
  torch::manual_seed(11);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto base = torch::randn({6, 5}, f64);
  base[1].zero_();      // a zero vector: zero gradient
  base[2].mul_(1e-15);  // shorter than eps: divided by eps (kClamp)
  base[3].mul_(1e200);  // its squares overflow float64
  const auto g = torch::randn({6, 5}, f64), h = torch::randn({6, 5}, f64);
  for (auto mode : {F::L2Eps::kClamp, F::L2Eps::kAdd}) {
    auto x = base.clone().requires_grad_(true);
    auto fused = F::l2_normalize(x, 1e-12, mode, FiniteCheck::kNever);
    auto composed = F::detail::composite(x, 1e-12, mode);
    CHECK(torch::equal(fused, composed));  // the same forward arithmetic
    auto d_fused = torch::autograd::grad({fused}, {x}, {g}, true, true)[0];
    auto d_composed = torch::autograd::grad({composed}, {x}, {g}, true, true)[0];
    CHECK(torch::allclose(d_fused, d_composed, 1e-12, 0));
    CHECK(d_fused[1].abs().max().item<double>() == 0.0);
    // gradients of gradients (create_graph) take the differentiable path
    auto dd_fused = torch::autograd::grad({d_fused}, {x}, {h})[0];
    auto dd_composed = torch::autograd::grad({d_composed}, {x}, {h})[0];
    // (at the zero vector the formula has no second derivative: both give NaN there)
    const auto rows = torch::tensor({0, 2, 3, 4, 5});
    CHECK(torch::allclose(dd_fused.index_select(0, rows), dd_composed.index_select(0, rows), 1e-12, 0));
  }
  // and against central differences on ordinary vectors
  auto w = torch::randn({4, 3}, f64);
  for (auto mode : {F::L2Eps::kClamp, F::L2Eps::kAdd}) {
    auto x = torch::randn({4, 3}, f64).requires_grad_(true);
    const double error = patchgcl_test::gradient_error([&] { return (F::l2_normalize(x, 1e-7, mode) * w).sum(); }, x);
    CHECK(error < 1e-8);
  }
}

TEST_CASE("sample_patches names the valid range of patch ids it was given outside of", "[properties]") {
  auto map = torch::randn({1, 2, 3, 4});
  CHECK_THROWS_WITH(F::sample_patches(map, torch::tensor({0, 12})),
                    Catch::Contains("patch_ids") && Catch::Contains("[0, 12)") && Catch::Contains("[0, 12]"));
  CHECK_THROWS_WITH(F::sample_patches(map, torch::tensor({-1, 3})), Catch::Contains("[-1, 3]"));
  CHECK(F::sample_patches(map, torch::tensor({11, 11, 0})).sizes() == torch::IntArrayRef({1, 3, 2}));
  auto nan_map = map.clone();
  nan_map[0][1][2][3] = kNaN;  // location 11
  CHECK_NOTHROW(F::sample_patches(nan_map, torch::tensor({0, 1})));
  CHECK_THROWS_WITH(F::sample_patches(nan_map, torch::tensor({0, 11})), Catch::Contains("NaN or Inf"));
}

TEST_CASE("info_nce reports similarities that overflow instead of returning NaN", "[properties]") {
  auto u = F::l2_normalize(torch::randn({6, 4}));
  CHECK_THROWS_WITH(F::info_nce(u, u, InfoNCEOptions().temperature(1e-300)),
                    Catch::Contains("temperature") && Catch::Contains("Float"));
  auto v = torch::randn({6, 4}) * 1e20f;
  CHECK_THROWS_WITH(F::info_nce(v, v), Catch::Contains("not finite although the inputs are"));
  CHECK_NOTHROW(F::info_nce(v, v, InfoNCEOptions().check_finite(FiniteCheck::kNever)));
  CHECK(std::isfinite(F::info_nce(F::l2_normalize(v), F::l2_normalize(v)).item<double>()));
}

TEST_CASE("The composed losses stay finite for features of magnitude 1e30 and 1e-30", "[properties]") {
  torch::manual_seed(3);
  PatchNCELoss nce(PatchNCELossOptions({3}).num_patches(8).nc(8));
  GraphNCELoss gcl(GraphNCELossOptions({3}).num_patches(8).nc(8));
  for (double scale : {1e30, 1e-30}) {
    auto out = (torch::randn({1, 3, 4, 4}) * scale).requires_grad_(true);
    auto in = torch::randn({1, 3, 4, 4}) * scale;
    auto ids = std::vector<torch::Tensor>{torch::arange(8)};
    for (auto loss : {nce->forward({out}, {in}, ids), gcl->forward({out}, {in}, ids)}) {
      CHECK(std::isfinite(loss.item<double>()));
      out.mutable_grad() = torch::Tensor();
      loss.backward();
      CHECK(torch::isfinite(out.grad()).all().item<bool>());
    }
  }
}

TEST_CASE("The composed losses reject per-anchor reduction, whose shapes differ across layers and levels",
          "[properties]") {
  auto o = InfoNCEOptions().reduction(Reduction::kNone);
  CHECK_THROWS_WITH(PatchNCELoss(PatchNCELossOptions({3}).info_nce(o)), Catch::Contains("Reduction::kMean"));
  CHECK_THROWS_WITH(GraphNCELoss(GraphNCELossOptions({3}).info_nce(o)), Catch::Contains("Reduction::kMean"));
  CHECK_THROWS_WITH(GraphNCELoss(GraphNCELossOptions({3}).l2_eps(0.0)), Catch::Contains("l2_eps"));
}

TEST_CASE("hop_features validates its inputs and computes half precision in float32", "[properties]") {
  auto x = torch::randn({5, 3});
  auto abar = F::normalize_adjacency(torch::ones({5, 5}));
  CHECK_THROWS_WITH(F::hop_features(x, abar, -1), Catch::Contains("hops") && Catch::Contains(">= 0"));
  CHECK_THROWS_WITH(F::hop_features(x, abar.narrow(0, 0, 4).narrow(1, 0, 4), 1),
                    Catch::Contains("abar") && Catch::Contains("[4, 4]"));
  CHECK_THROWS_WITH(F::hop_features(x, abar.to(torch::kFloat64), 1), Catch::Contains("same dtype"));
  auto half = F::hop_features(x.to(torch::kHalf), abar.to(torch::kHalf), 2);
  CHECK(half.scalar_type() == torch::kHalf);
  CHECK(torch::allclose(half.to(torch::kFloat32), F::hop_features(x, abar, 2), 1e-2, 1e-2));
}

TEST_CASE("TopKPool with tied scores keeps k distinct nodes and PyG's scores of a zero p are 0, not NaN",
          "[properties]") {
  TopKPool pool(TopKPoolOptions(3).k(3).init_std(0.0).divide_by_norm(true).activation(ScoreActivation::kTanh));
  auto z = torch::ones({6, 3});
  auto out = pool(z, z, torch::ones({6, 6}));
  CHECK(distinct(out.indices));
  CHECK(torch::isfinite(out.scores).all().item<bool>());
}

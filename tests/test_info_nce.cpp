// InfoNCE (Eq. 4), PatchNCE's -10 diagonal, both directions, PUT's pruning.
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_test::f64;

namespace {
torch::Tensor unit_nodes(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  return F::l2_normalize(torch::randn(shape, f64()));
}
/// CUT's formula for one image, written the way its code builds it: logits [pos | negatives
/// with the diagonal replaced], divided by tau, cross-entropy with target 0.
torch::Tensor cut_formula(const torch::Tensor& v, const torch::Tensor& z, double tau, double fill) {
  const int64_t n = v.size(0);
  auto pos = (v * z).sum(1, true);
  auto neg = v.mm(z.t()).masked_fill(torch::eye(n, torch::kBool), fill);
  auto logits = torch::cat({pos, neg}, 1) / tau;
  return torch::nn::functional::cross_entropy(logits, torch::zeros({n}, torch::kLong),
                                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
}
}  // namespace

TEST_CASE("info_nce equals CUT's cross-entropy over [positive, negatives with a -10 diagonal]", "[info_nce]") {
  auto v = unit_nodes({12, 5}, 1), z = unit_nodes({12, 5}, 2);
  const double tau = GENERATE(0.07, 1.0);
  auto opts = InfoNCEOptions().temperature(tau).reduction(Reduction::kNone);
  CHECK(patchgcl_test::rel_error(F::info_nce(v, z, opts), cut_formula(v, z, tau, -10.0)) < 1e-12);
  CHECK(F::info_nce(v, z, opts.reduction(Reduction::kMean)).item<double>() ==
        Approx(cut_formula(v, z, tau, -10.0).mean().item<double>()).epsilon(1e-12));
}

TEST_CASE("info_nce with a -inf diagonal is Eq. 4: softmax over all keys", "[info_nce]") {
  auto v = unit_nodes({9, 4}, 3), z = unit_nodes({9, 4}, 4);
  auto loss = F::info_nce(v, z, InfoNCEOptions().temperature(0.5).diagonal_value(InfoNCEOptions::kNoDiagonal));
  auto expected = torch::nn::functional::cross_entropy(v.mm(z.t()) / 0.5, torch::arange(9));
  CHECK(loss.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
}

TEST_CASE("info_nce directions: input-to-output is Eq. 4's z_i against v_j, both is their sum", "[info_nce]") {
  auto v = unit_nodes({10, 6}, 5), z = unit_nodes({10, 6}, 6);
  auto base = InfoNCEOptions().reduction(Reduction::kNone);
  auto vz = F::info_nce(v, z, base);
  auto zv = F::info_nce(v, z, InfoNCEOptions(base).direction(Direction::kInputToOutput));
  CHECK(patchgcl_test::rel_error(zv, cut_formula(z, v, 0.07, -10.0)) < 1e-12);
  CHECK(patchgcl_test::rel_error(F::info_nce(v, z, InfoNCEOptions(base).direction(Direction::kBoth)), vz + zv) < 1e-12);
  CHECK(patchgcl_test::max_abs(vz, zv) > 1e-3);
}

TEST_CASE("info_nce detaches the input side and its output gradient matches finite differences", "[info_nce]") {
  auto v = unit_nodes({2, 6, 3}, 7).requires_grad_();
  auto z = unit_nodes({2, 6, 3}, 8).requires_grad_();
  for (auto dir : {Direction::kOutputToInput, Direction::kInputToOutput, Direction::kBoth}) {
    auto opts = InfoNCEOptions().direction(dir).temperature(0.3);
    auto f = [&] { return F::info_nce(v, z, opts); };
    CHECK(patchgcl_test::gradient_error(f, v) < 1e-7);
    CHECK_FALSE(z.grad().defined());
  }
  auto pruned = [&] {
    return F::info_nce(v, z, InfoNCEOptions().pruning(Pruning::kHardestPerAnchor).hard_negatives(2).temperature(0.3));
  };
  CHECK(patchgcl_test::gradient_error(pruned, v) < 1e-7);
  auto column = [&] {
    return F::info_nce(v, z,
                       InfoNCEOptions().pruning(Pruning::kReferenceColumnSort).hard_negatives(3).temperature(0.3));
  };
  CHECK(patchgcl_test::gradient_error(column, v) < 1e-7);
}

TEST_CASE("info_nce's per-anchor losses have the gradients of finite differences in every setting", "[info_nce]") {
  // The unpruned path has a hand-written backward: per-anchor weights, both directions, the
  // -inf diagonal and whole-batch negatives exercise each of its terms.
  auto v = unit_nodes({2, 5, 3}, 11).requires_grad_();
  auto z = unit_nodes({2, 5, 3}, 12);
  auto weights = torch::rand({2, 5}, torch::kFloat64);
  for (auto dir : {Direction::kOutputToInput, Direction::kInputToOutput, Direction::kBoth}) {
    for (double diagonal : {-10.0, InfoNCEOptions::kNoDiagonal}) {
      for (auto negatives : {Negatives::kSameImage, Negatives::kWholeBatch}) {
        auto opts =
            InfoNCEOptions().direction(dir).temperature(0.2).diagonal_value(diagonal).negatives(negatives).reduction(
                Reduction::kNone);
        auto f = [&] { return (F::info_nce(v, z, opts) * weights).sum(); };
        CHECK(patchgcl_test::gradient_error(f, v) < 1e-7);
      }
    }
  }
}

TEST_CASE("info_nce on a batch uses negatives of the same image, or of the whole batch", "[info_nce]") {
  auto v = unit_nodes({3, 7, 4}, 9), z = unit_nodes({3, 7, 4}, 10);
  auto none = InfoNCEOptions().reduction(Reduction::kNone);
  auto per_image = F::info_nce(v, z, none);
  REQUIRE(per_image.sizes() == torch::IntArrayRef({3, 7}));
  for (int64_t b = 0; b < 3; ++b) CHECK(patchgcl_test::rel_error(per_image[b], F::info_nce(v[b], z[b], none)) < 1e-13);
  CHECK(F::info_nce(v, z).item<double>() == Approx(per_image.mean().item<double>()).epsilon(1e-13));
  auto whole = F::info_nce(v, z, InfoNCEOptions(none).negatives(Negatives::kWholeBatch));
  CHECK(patchgcl_test::rel_error(whole.view({-1}), F::info_nce(v.view({21, 4}), z.view({21, 4}), none)) < 1e-13);
}

TEST_CASE("PUT's paper pruning keeps each anchor's k hardest negatives", "[info_nce]") {
  auto v = unit_nodes({8, 3}, 11), z = unit_nodes({8, 3}, 12);
  const int64_t kh = 3;
  auto loss = F::info_nce(
      v, z, InfoNCEOptions().pruning(Pruning::kHardestPerAnchor).hard_negatives(kh).reduction(Reduction::kNone));
  auto s = v.mm(z.t());
  for (int64_t i = 0; i < 8; ++i) {
    std::vector<double> negatives;
    for (int64_t j = 0; j < 8; ++j)
      if (j != i) negatives.push_back(s[i][j].item<double>());
    std::sort(negatives.rbegin(), negatives.rend());
    double denom = std::exp(s[i][i].item<double>() / 0.07);
    for (int64_t j = 0; j < kh; ++j) denom += std::exp(negatives[j] / 0.07);
    CHECK(loss[i].item<double>() == Approx(std::log(denom) - s[i][i].item<double>() / 0.07).epsilon(1e-12));
  }
}

TEST_CASE("PUT's released pruning sorts the negative block along dimension 0", "[info_nce]") {
  auto v = unit_nodes({2, 6, 3}, 13), z = unit_nodes({2, 6, 3}, 14);
  const int64_t kh = 2;
  auto loss = F::info_nce(
      v, z, InfoNCEOptions().pruning(Pruning::kReferenceColumnSort).hard_negatives(kh).reduction(Reduction::kNone));
  // the code: l_neg [B*N, N] with -10 diagonals, sorted over rows (all images), first k columns
  auto neg = torch::bmm(v, z.transpose(1, 2)).masked_fill(torch::eye(6, torch::kBool), -10.0).reshape({12, 6});
  std::vector<std::vector<double>> columns(6);
  for (int64_t j = 0; j < 6; ++j) {
    for (int64_t r = 0; r < 12; ++r) columns[j].push_back(neg[r][j].item<double>());
    std::sort(columns[j].rbegin(), columns[j].rend());
  }
  auto pos = (v * z).sum(-1).reshape({12});
  for (int64_t r = 0; r < 12; ++r) {
    double denom = std::exp(pos[r].item<double>() / 0.07);
    for (int64_t j = 0; j < kh; ++j) denom += std::exp(columns[j][r] / 0.07);
    CHECK(loss.view({-1})[r].item<double>() == Approx(std::log(denom) - pos[r].item<double>() / 0.07).epsilon(1e-12));
  }
  auto per_anchor = F::info_nce(
      v, z, InfoNCEOptions().pruning(Pruning::kHardestPerAnchor).hard_negatives(kh).reduction(Reduction::kNone));
  CHECK(patchgcl_test::max_abs(loss, per_anchor) > 1e-6);
}

TEST_CASE("info_nce computes half and bfloat16 inputs in float32 without overflow", "[info_nce]") {
  auto v = unit_nodes({16, 8}, 15), z = unit_nodes({16, 8}, 16);
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    auto loss = F::info_nce(v.to(dtype), z.to(dtype));
    CHECK(loss.scalar_type() == torch::kFloat32);
    CHECK(std::isfinite(loss.item<double>()));
    CHECK(loss.item<double>() == Approx(F::info_nce(v, z).item<double>()).epsilon(2e-2));
  }
  // unnormalised large features: logits of 1e4 / 0.07 must not overflow
  auto big = F::info_nce(v * 100, z * 100);
  CHECK(std::isfinite(big.item<double>()));
}

TEST_CASE("info_nce rejects bad arguments with a message naming them", "[info_nce]") {
  auto v = unit_nodes({6, 3}, 17);
  CHECK_THROWS_WITH(F::info_nce(v, v, InfoNCEOptions().temperature(0.0)),
                    Catch::Contains("temperature") && Catch::Contains("> 0"));
  CHECK_THROWS_WITH(F::info_nce(v, unit_nodes({5, 3}, 1)), Catch::Contains("same shape") && Catch::Contains("[5, 3]"));
  CHECK_THROWS_WITH(F::info_nce(v, v, InfoNCEOptions().pruning(Pruning::kHardestPerAnchor).hard_negatives(6)),
                    Catch::Contains("hard_negatives") && Catch::Contains("N - 1 = 5"));
  CHECK_THROWS_WITH(F::info_nce(v.narrow(0, 0, 1), v.narrow(0, 0, 1)), Catch::Contains("at least 2 nodes"));
  CHECK_THROWS_WITH(F::info_nce(v, v.to(torch::kFloat32)), Catch::Contains("same dtype"));
  auto nan = v.clone();
  nan[2][1] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(F::info_nce(nan, v), Catch::Contains("output") && Catch::Contains("NaN"));
  CHECK_NOTHROW(F::info_nce(nan, v, InfoNCEOptions().check_finite(FiniteCheck::kNever)));
}

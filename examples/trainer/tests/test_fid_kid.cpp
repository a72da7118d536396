// FID and KID (fid_kid.hpp) against the Python reference tests/reference/fid_kid_reference.py
// (scipy.linalg.sqrtm as pytorch-fid; the KID formula of Binkowski et al. / torch-fidelity), whose
// fixed feature sets and expected values are committed in tests/fixtures/fid_kid.pgt.
#include "trainer/eval/fid_kid.hpp"
#include "trainer/tests/checkout_paths.hpp"

#include <patchgcl/io/tensor_file.hpp>

#include <catch2/catch.hpp>

using namespace trainer::metrics;

namespace {
const patchgcl::io::TensorFile& fixture() {
  static const auto file = patchgcl::io::read_tensor_file(std::string(PATCHGCL_FIXTURE_DIR) + "/fid_kid.pgt");
  return file;
}
torch::Tensor get(const std::string& name) { return fixture().tensors.at(name); }
double scalar(const std::string& name) { return get(name).item<double>(); }
double rel(double actual, double expected) { return std::abs(actual - expected) / std::abs(expected); }
torch::Tensor randn(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return at::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat64));
}
}  // namespace

TEST_CASE("FID equals pytorch-fid's formula with scipy's sqrtm to 1e-6 relative on fixed feature sets", "[fid]") {
  for (const char* name : {"full", "few", "close"}) {
    INFO(name);
    const std::string c = name;
    const double expected = scalar(c + ".fid");
    const double actual = fid(get(c + ".x"), get(c + ".y"));
    INFO(
        fmt::format("C++ {:.17g}, scipy {:.17g}, relative difference {:.3g}", actual, expected, rel(actual, expected)));
    CHECK(rel(actual, expected) <= 1e-6);
  }
  // The values themselves, so a regenerated fixture that changed them is noticed.
  CHECK(scalar("full.fid") == Approx(12.536039594917881).epsilon(1e-12));
  CHECK(scalar("few.fid") == Approx(34.6425397633046).epsilon(1e-12));
}

TEST_CASE("FID is the closed form in one dimension, zero for identical sets and symmetric", "[fid]") {
  // D = 1: (mu_1 - mu_2)^2 + (s_1 - s_2)^2 with the unbiased standard deviations.
  auto x = torch::tensor({1.0, 2.0, 4.0, 7.0}, torch::kFloat64).view({4, 1});
  auto y = torch::tensor({0.0, 3.0, 3.0}, torch::kFloat64).view({3, 1});
  const double s1 = x.std().item<double>(), s2 = y.std().item<double>();
  const double mean_gap = x.mean().item<double>() - y.mean().item<double>();
  CHECK(fid(x, y) == Approx(mean_gap * mean_gap + (s1 - s2) * (s1 - s2)).epsilon(1e-12));
  auto a = randn({50, 6}, 1), b = randn({40, 6}, 2) * 1.5 + 0.3;
  CHECK(std::abs(fid(a, a)) < 1e-10);
  CHECK(fid(a, b) == Approx(fid(b, a)).epsilon(1e-10));
  CHECK(fid(a.to(torch::kFloat32), b.to(torch::kFloat32)) == Approx(fid(a, b)).epsilon(1e-5));
}

TEST_CASE("KID's unbiased cubic-kernel MMD^2 equals the Python reference on the same subsets", "[kid]") {
  for (const char* name : {"full", "few", "close"}) {
    INFO(name);
    const std::string c = name;
    auto x = get(c + ".x"), y = get(c + ".y");
    auto xi = get(c + ".kid.x_idx"), yi = get(c + ".kid.y_idx"), expected = get(c + ".kid.mmd2");
    std::vector<double> values;
    for (int64_t s = 0; s < xi.size(0); ++s) {
      values.push_back(polynomial_mmd2(x.index_select(0, xi[s]), y.index_select(0, yi[s])));
      CHECK(values.back() == Approx(expected[s].item<double>()).epsilon(1e-10).margin(1e-12));
    }
    auto t = torch::tensor(values, torch::kFloat64);
    CHECK(t.mean().item<double>() == Approx(scalar(c + ".kid.mean")).epsilon(1e-10).margin(1e-12));
    CHECK(t.std(/*unbiased=*/false).item<double>() == Approx(scalar(c + ".kid.std")).epsilon(1e-9));
  }
}

TEST_CASE("KID subsets: at most the smaller set, seeded, and all of it when it fits", "[kid]") {
  auto x = randn({30, 5}, 3), y = randn({30, 5}, 4) + 0.5;
  // Subsets as large as the sets: every subset is a permutation, MMD^2 does not depend on order.
  auto whole = kid(x, y, KidOptions{4, 1000, 7});
  CHECK(whole.subset_size == 30);
  CHECK(whole.subsets == 4);
  CHECK(whole.mean == Approx(polynomial_mmd2(x, y)).epsilon(1e-12));
  CHECK(whole.std < 1e-12);
  // Smaller subsets: the same seed gives the same value, another seed another one.
  auto a = kid(x, y, KidOptions{10, 12, 1}), b = kid(x, y, KidOptions{10, 12, 1}), c = kid(x, y, KidOptions{10, 12, 2});
  CHECK(a.subset_size == 12);
  CHECK(a.mean == b.mean);
  CHECK(a.mean != c.mean);
  CHECK(a.std > 0);
  // Unequal sets: the subset size is capped by the smaller one.
  CHECK(kid(randn({9, 5}, 5), y).subset_size == 9);
  // Shifted sets score higher than two draws of one distribution.
  CHECK(kid(x, randn({30, 5}, 6)).mean < whole.mean);
}

TEST_CASE("FID and KID reject feature sets they cannot score, naming what is expected", "[fid][kid]") {
  auto ok = randn({10, 4}, 1);
  CHECK_THROWS_WITH(fid(torch::Tensor(), ok), Catch::Contains("translated features") && Catch::Contains("undefined"));
  CHECK_THROWS_WITH(fid(ok, randn({10, 4, 1}, 1)),
                    Catch::Contains("real features") && Catch::Contains("[N, D]") && Catch::Contains("[10, 4, 1]"));
  CHECK_THROWS_WITH(fid(randn({1, 4}, 1), ok), Catch::Contains("at least 2") && Catch::Contains("got 1"));
  CHECK_THROWS_WITH(fid(ok, randn({10, 5}, 1)), Catch::Contains("same dimension") && Catch::Contains("4 and 5"));
  CHECK_THROWS_WITH(fid(ok, torch::ones({10, 4}, torch::kLong)), Catch::Contains("floating-point"));
  auto nan = ok.clone();
  nan[2][1] = std::nan("");
  CHECK_THROWS_WITH(kid(nan, ok), Catch::Contains("translated features") && Catch::Contains("NaN"));
  CHECK_THROWS_WITH(kid(ok, randn({1, 4}, 1)), Catch::Contains("real features") && Catch::Contains("at least 2"));
  CHECK_THROWS_WITH(kid(ok, ok, KidOptions{0, 10, 0}), Catch::Contains("subsets >= 1"));
}

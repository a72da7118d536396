// TAGConv (Eq. 2-3).
#include <catch2/catch.hpp>
#include <patchgcl/patchgcl.hpp>
#include <support/gradcheck.hpp>

using namespace patchgcl;
namespace F = patchgcl::functional;
using patchgcl_test::f64;

namespace {
torch::Tensor random_abar(int64_t b, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  auto x = torch::randn({b, n, 6}, f64());
  return F::normalize_adjacency(F::cosine_adjacency(x, CosineAdjacencyOptions().threshold(0.2)));
}
/// Eq. 2 written out: sum_l Abar^l X W_l + b, with matrix powers.
torch::Tensor dense_tag_conv(const torch::Tensor& x, const torch::Tensor& abar, TAGConvImpl& conv) {
  auto out = torch::zeros({x.size(0), conv.options.out_channels()}, f64());
  for (int64_t l = 0; l <= conv.options.hops(); ++l)
    out += torch::linalg_matrix_power(abar, l).mm(x).mm(conv.hop_weight(l));
  return conv.options.bias() ? out + conv.lin->bias : out;
}
}  // namespace

TEST_CASE("TAGConv equals sum_l Abar^l X W_l + b written out", "[tag_conv]") {
  const int64_t hops = GENERATE(0, 1, 2, 3);
  const bool bias = GENERATE(true, false);
  TAGConv conv(TAGConvOptions(4, 3).hops(hops).bias(bias).init_std(0.5));
  conv->to(torch::kFloat64);
  auto abar = random_abar(1, 7, 3)[0];
  auto x = torch::randn({7, 4}, f64());
  CHECK(patchgcl_test::max_abs(conv(x, abar), dense_tag_conv(x, abar, *conv)) < 1e-12);
}

TEST_CASE("TAGConv stores its weights as DGL does and names them lin.weight / lin.bias", "[tag_conv]") {
  TAGConv conv(TAGConvOptions(4, 3).hops(2));
  auto params = conv->named_parameters();
  REQUIRE(params.contains("lin.weight"));
  REQUIRE(params.contains("lin.bias"));
  CHECK(params["lin.weight"].sizes() == torch::IntArrayRef({3, 12}));
  CHECK(torch::equal(conv->hop_weight(1), params["lin.weight"].slice(1, 4, 8).t()));  // two views of one weight
  CHECK(params["lin.bias"].abs().sum().item<double>() == 0.0);
  CHECK(params["lin.weight"].std().item<double>() == Approx(0.02).epsilon(0.5));
  CHECK_THROWS_WITH(conv->hop_weight(3), Catch::Contains("[0, 2]"));
}

TEST_CASE("TAGConv with zero hops is a linear layer", "[tag_conv]") {
  TAGConv conv(TAGConvOptions(5, 2).hops(0));
  auto x = torch::randn({3, 6, 5});
  auto abar = torch::rand({3, 6, 6});
  CHECK(torch::allclose(conv(x, abar), torch::nn::functional::linear(x, conv->lin->weight, conv->lin->bias)));
}

TEST_CASE("TAGConv on a batch equals one graph per image", "[tag_conv]") {
  TAGConv conv(TAGConvOptions(4, 3).hops(2).init_std(0.3));
  conv->to(torch::kFloat64);
  auto abar = random_abar(3, 8, 5);
  auto x = torch::randn({3, 8, 4}, f64());
  auto batched = conv(x, abar);
  for (int64_t b = 0; b < 3; ++b) CHECK(patchgcl_test::max_abs(batched[b], conv(x[b], abar[b])) < 1e-14);
}

TEST_CASE("TAGConv::forward_shared propagates both graphs like two forward calls, input side detached", "[tag_conv]") {
  TAGConv conv(TAGConvOptions(4, 3).hops(2).init_std(0.3));
  conv->to(torch::kFloat64);
  auto abar = random_abar(2, 9, 7);
  auto v = torch::randn({2, 9, 4}, f64()).requires_grad_();
  auto z = torch::randn({2, 9, 4}, f64()).requires_grad_();
  auto shared = conv->forward_shared(v, z, abar);
  CHECK(patchgcl_test::max_abs(shared.first, conv(v, abar)) < 1e-14);
  CHECK(patchgcl_test::max_abs(shared.second, conv(z, abar)) < 1e-14);
  CHECK_FALSE(shared.second.requires_grad());

  auto w = torch::randn({2, 9, 3}, f64());
  (shared.first * w).sum().backward();
  auto grad_shared = v.grad().clone();
  auto grad_w_shared = conv->lin->weight.grad().clone();
  v.mutable_grad().zero_();
  conv->lin->weight.mutable_grad().zero_();
  (conv(v, abar) * w).sum().backward();
  CHECK(patchgcl_test::max_abs(grad_shared, v.grad()) < 1e-13);
  CHECK(patchgcl_test::max_abs(grad_w_shared, conv->lin->weight.grad()) < 1e-13);
  CHECK_FALSE(z.grad().defined());
}

TEST_CASE("TAGConv gradients match finite differences", "[tag_conv]") {
  TAGConv conv(TAGConvOptions(3, 2).hops(2).init_std(0.5));
  conv->to(torch::kFloat64);
  {
    torch::NoGradGuard g;
    conv->lin->bias.uniform_(-1, 1);
  }
  auto abar = random_abar(1, 5, 11)[0];
  auto x = torch::randn({5, 3}, f64()).requires_grad_();
  auto w = torch::randn({5, 2}, f64());
  auto f = [&] { return (conv(x, abar).tanh() * w).sum(); };
  CHECK(patchgcl_test::gradient_error(f, x) < 1e-7);
  CHECK(patchgcl_test::gradient_error(f, conv->lin->weight) < 1e-7);
  CHECK(patchgcl_test::gradient_error(f, conv->lin->bias) < 1e-7);
  auto shared = [&] { return (conv->forward_shared(x, x.detach() * 2, abar).first.tanh() * w).sum(); };
  CHECK(patchgcl_test::gradient_error(shared, x) < 1e-7);
}

TEST_CASE("TAGConv rejects mismatched shapes with a clear message", "[tag_conv]") {
  TAGConv conv(TAGConvOptions(4, 3));
  CHECK_THROWS_WITH(conv(torch::randn({6, 5}), torch::eye(6)),
                    Catch::Contains("4 channels") && Catch::Contains("[6, 5]"));
  CHECK_THROWS_WITH(conv(torch::randn({6, 4}), torch::eye(5)), Catch::Contains("abar") && Catch::Contains("[5, 5]"));
  CHECK_THROWS_WITH(conv(torch::randn({2, 6, 4}), torch::eye(6)), Catch::Contains("[B, N, N]"));
  CHECK_THROWS_WITH(conv->forward_shared(torch::randn({6, 4}), torch::randn({5, 4}), torch::eye(6)),
                    Catch::Contains("same shape"));
  CHECK_THROWS_WITH(conv(torch::randn({6, 4}, f64()), torch::eye(6)),
                    Catch::Contains("Double") && Catch::Contains("Float"));
  CHECK_THROWS_WITH(TAGConv(TAGConvOptions(4, 3).hops(-1)), Catch::Contains("hops"));
}

TEST_CASE("functional::tag_conv and shared_tag_conv compute TAGConv's forward from its weights", "[tag_conv]") {
  const bool bias = GENERATE(true, false);
  TAGConv conv(TAGConvOptions(4, 3).hops(2).bias(bias).init_std(0.4));
  conv->to(torch::kFloat64);
  auto abar = random_abar(2, 7, 13);
  auto v = torch::randn({2, 7, 4}, f64()).requires_grad_();
  auto z = torch::randn({2, 7, 4}, f64());
  const auto& w = conv->lin->weight;
  const auto& b = conv->lin->bias;
  CHECK(patchgcl_test::max_abs(F::tag_conv(v, abar, w, b, 2), conv(v, abar)) < 1e-14);
  CHECK(patchgcl_test::max_abs(F::tag_conv(v[0], abar[0], w, b, 2), dense_tag_conv(v[0], abar[0], *conv)) < 1e-12);
  auto shared = F::shared_tag_conv(v, z, abar, w, b, 2);
  auto by_module = conv->forward_shared(v, z, abar);
  CHECK(patchgcl_test::max_abs(shared.first, by_module.first) < 1e-14);
  CHECK(patchgcl_test::max_abs(shared.second, by_module.second) < 1e-14);
  CHECK(shared.first.requires_grad());
  CHECK_FALSE(shared.second.requires_grad());
}

TEST_CASE("functional::tag_conv rejects weights that do not fit the hops and the nodes", "[tag_conv]") {
  auto x = torch::randn({6, 4});
  auto abar = torch::eye(6);
  auto w = torch::randn({3, 12});
  CHECK_THROWS_WITH(F::tag_conv(x, abar, w, {}, 1),
                    Catch::Contains("`weight`") && Catch::Contains("[C_out, 8]") && Catch::Contains("[3, 12]"));
  CHECK_THROWS_WITH(F::tag_conv(x, abar, torch::Tensor(), {}, 2), Catch::Contains("`weight` is an undefined tensor"));
  CHECK_THROWS_WITH(F::tag_conv(x, abar, w, torch::zeros({2}), 2), Catch::Contains("`bias`") && Catch::Contains("[3]"));
  CHECK_THROWS_WITH(F::tag_conv(x, abar, w.to(torch::kFloat64), {}, 2), Catch::Contains("same dtype"));
  CHECK_THROWS_WITH(F::shared_tag_conv(x, torch::randn({6, 4}), abar, w, {}, -1), Catch::Contains("hops"));
  CHECK_THROWS_WITH(F::shared_tag_conv(x, torch::randn({5, 4}), abar, w, {}, 2), Catch::Contains("same shape"));
  CHECK(F::tag_conv(x, abar, w, {}, 2).sizes() == torch::IntArrayRef({6, 3}));
}

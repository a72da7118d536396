// Tests of the trainer's networks (generator, discriminator, upsampling, VGG16 weights) and of
// the evaluation of the embedded shapes.
#include "trainer/tests/helpers.hpp"

#include <sstream>

using namespace trainer_tests;

TEST_CASE("Upsample equals CUT's transposed-convolution definition", "[networks]") {
  namespace F = torch::nn::functional;
  auto x = torch::randn({2, 3, 5, 7});
  auto f = torch::tensor({1.0, 3.0, 3.0, 1.0});
  auto f2 = f.unsqueeze(1) * f.unsqueeze(0);
  auto filt = (f2 / f2.sum() * 4.0).expand({3, 1, 4, 4}).contiguous();
  auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  auto ref = F::conv_transpose2d(padded, filt, F::ConvTranspose2dFuncOptions().stride(2).padding(2).groups(3));
  using torch::indexing::None;
  using torch::indexing::Slice;
  ref = ref.index({Slice(), Slice(), Slice(1, None), Slice(1, None)});
  ref = ref.index({Slice(), Slice(), Slice(None, -1), Slice(None, -1)});  // CUT: even filter -> trim
  Upsample up(3);
  CHECK(torch::allclose(up->forward(x), ref, 1e-5, 1e-6));
}

TEST_CASE("The generator keeps the image size and reports its encoder channels", "[networks]") {
  ResnetGenerator g(GeneratorOptions().ngf(8).n_blocks(3));
  auto x = torch::randn({2, 3, 32, 48});
  CHECK(g->forward(x).sizes() == torch::IntArrayRef({2, 3, 32, 48}));
  auto layers = g->default_nce_layers();
  CHECK(layers == std::vector<int64_t>{0, 4, 8, 12, 14});
  auto feats = g->encode(x, layers);
  auto channels = g->channels(layers);
  REQUIRE(feats.size() == layers.size());
  for (size_t i = 0; i < feats.size(); ++i) CHECK(feats[i].size(1) == channels[i]);
  CHECK(feats[0].size(2) == 38);  // reflection-padded input
  CHECK(feats[2].size(2) == 16);  // before the second Downsample
  PatchDiscriminator d(DiscriminatorOptions().ndf(8));
  CHECK(d->forward(x).size(1) == 1);
}

TEST_CASE("The generator's tensors take the names of CUT's ResnetGenerator state_dict", "[networks][cut_names]") {
  ResnetGenerator g(GeneratorOptions().input_nc(1).output_nc(3).ngf(4).n_blocks(2));
  const auto cut = cut_names::to_cut_state_dict(*g);
  // CUT's names and shapes for ResnetGenerator(1, 3, ngf=4, n_blocks=2), instance norm, antialias on:
  // 0 pad, 1 conv, 2 IN, 3 ReLU, 4 conv, 5 IN, 6 ReLU, 7 Downsample, 8 conv, 9-10, 11 Downsample,
  // 12-13 blocks, 14 Upsample, 15 conv, 16-17, 18 Upsample, 19 conv, 20-21, 22 pad, 23 conv, 24 tanh.
  const std::map<std::string, std::vector<int64_t>> expected = {{"model.1.weight", {4, 1, 7, 7}},
                                                                {"model.1.bias", {4}},
                                                                {"model.4.weight", {8, 4, 3, 3}},
                                                                {"model.4.bias", {8}},
                                                                {"model.7.filt", {8, 1, 3, 3}},
                                                                {"model.8.weight", {16, 8, 3, 3}},
                                                                {"model.8.bias", {16}},
                                                                {"model.11.filt", {16, 1, 3, 3}},
                                                                {"model.12.conv_block.1.weight", {16, 16, 3, 3}},
                                                                {"model.12.conv_block.1.bias", {16}},
                                                                {"model.12.conv_block.5.weight", {16, 16, 3, 3}},
                                                                {"model.12.conv_block.5.bias", {16}},
                                                                {"model.13.conv_block.1.weight", {16, 16, 3, 3}},
                                                                {"model.13.conv_block.1.bias", {16}},
                                                                {"model.13.conv_block.5.weight", {16, 16, 3, 3}},
                                                                {"model.13.conv_block.5.bias", {16}},
                                                                {"model.14.filt", {16, 1, 4, 4}},
                                                                {"model.15.weight", {8, 16, 3, 3}},
                                                                {"model.15.bias", {8}},
                                                                {"model.18.filt", {8, 1, 4, 4}},
                                                                {"model.19.weight", {4, 8, 3, 3}},
                                                                {"model.19.bias", {4}},
                                                                {"model.23.weight", {3, 4, 7, 7}},
                                                                {"model.23.bias", {3}}};
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [name, t] : cut) got[name] = t.sizes().vec();
  CHECK(got == expected);
  // Weights are the generator's own; the filters are CUT's get_filter(3) and get_filter(4) * 4
  // (small integers over powers of two: exact in float32, whatever the order of the operations).
  CHECK(torch::equal(cut.at("model.23.weight"), g->named_parameters()["model.23.weight"]));
  const auto down = torch::tensor({1.f, 2.f, 1.f, 2.f, 4.f, 2.f, 1.f, 2.f, 1.f}).view({3, 3}) / 16;
  for (int64_t c = 0; c < 8; ++c) CHECK(torch::equal(cut.at("model.7.filt")[c][0], down));
  const auto row = torch::tensor({1.f, 3.f, 3.f, 1.f});
  const auto up = (row.view({4, 1}) * row.view({1, 4})) / 16;
  for (int64_t c = 0; c < 8; ++c) CHECK(torch::equal(cut.at("model.18.filt")[c][0], up));
  // CUT's names back to ours: the same for weights, `filter` for Downsample, none for Upsample.
  std::set<std::string> ours;
  for (const auto& [name, t] : cut) {
    const auto back = cut_names::from_cut_name(name, 2);
    if (!back.empty()) ours.insert(back);
  }
  std::set<std::string> own;
  for (const auto& group : {g->named_parameters(), g->named_buffers()})
    for (const auto& item : group)
      if (item.value().defined()) own.insert(item.key());
  CHECK(ours == own);
  CHECK(cut_names::from_cut_name("model.14.filt", 2).empty());
  CHECK(cut_names::from_cut_name("model.7.filt", 2) == "model.7.filter");
  for (const char* bad : {"model.2.weight", "model.14.weight", "model.12.conv_block.4.weight", "netG.model.1.weight",
                          "model..weight", "model.99999999999999999999.bias", "model.7.filter"})
    CHECK_THROWS_WITH(cut_names::from_cut_name(bad, 2),
                      Catch::Contains("is not a tensor of CUT's ResnetGenerator with 2 blocks"));
}

TEST_CASE("The evaluation separates identity, ground truth and blank translations", "[evaluate]") {
  const int size = 48, count = 12;
  const uint64_t seed = 5;
  SECTION("identity keeps the structure but has no texture") {
    auto s = evaluation::evaluate([](const torch::Tensor& x) { return x; }, count, size, seed);
    CHECK(s.structure == Approx(1.0));
    CHECK(s.texture < 0.02);
    CHECK(s.score < 0.02);
  }
  SECTION("the ground-truth B image scores 1 on both") {
    int i = 0;
    auto truth = [&](const torch::Tensor&) {
      auto spec = synthetic::make_spec(synthetic::Split::kTest, Domain::kA, i++, size, seed);
      return to_tensor(synthetic::render(spec, Domain::kB, size)).unsqueeze(0);
    };
    auto s = evaluation::evaluate(truth, count, size, seed);
    CHECK(s.structure > 0.95);
    CHECK(s.texture == Approx(1.0));
  }
  SECTION("a blank background has no structure; a grey image covers everything") {
    auto bg = torch::tensor({synthetic::kBackground[0], synthetic::kBackground[1], synthetic::kBackground[2]})
                      .view({1, 3, 1, 1}) *
                  2 -
              1;
    auto blank = evaluation::evaluate([&](const torch::Tensor& x) { return bg.expand_as(x); }, count, size, seed);
    CHECK(blank.structure == Approx(0.0));
    auto grey = evaluation::evaluate([](const torch::Tensor& x) { return torch::zeros_like(x); }, count, size, seed);
    CHECK(grey.structure < 0.4);
    CHECK(grey.structure > 0.0);
  }
  SECTION("hand-made masks") {
    auto a = torch::zeros({4, 4}, torch::kBool), b = torch::zeros({4, 4}, torch::kBool);
    a.index_put_({torch::indexing::Slice(0, 2)}, true);  // 8 pixels
    b.index_put_({torch::indexing::Slice(1, 3)}, true);  // 8 pixels, 4 shared
    CHECK(evaluation::iou(a, b) == Approx(4.0 / 12.0));
    CHECK(evaluation::erode(torch::ones({5, 5}, torch::kBool), 1).sum().item<int64_t>() == 25);
    auto square = torch::zeros({5, 5}, torch::kBool);
    square.index_put_({torch::indexing::Slice(1, 4), torch::indexing::Slice(1, 4)}, true);
    CHECK(evaluation::erode(square, 1).sum().item<int64_t>() == 1);
  }
}

// `translate`: a folder of images through a checkpoint's generator, unreadable files skipped, each
// image's size kept, and tiled translation against the whole image.
#include "trainer/tests/helpers.hpp"

#include <algorithm>
#include <cmath>
#include <random>

using namespace trainer_tests;

TEST_CASE("translate converts a folder and skips unreadable files", "[translate]") {
  torch::set_num_threads(1);
  TempDir dir("translate");
  fs::create_directories(dir.path / "in");
  write_png(dir.path / "in" / "one.png", synthetic::sample(synthetic::Split::kTest, Domain::kA, 0, 30, 0));
  write_png(dir.path / "in" / "two.png", synthetic::sample(synthetic::Split::kTest, Domain::kA, 1, 64, 0));
  write_garbage(dir.path / "in" / "three.jpg");
  auto config = tiny_config();
  config.steps = 0;
  Trainer t(config, torch::kCPU);
  checkpoint::save(t, dir.path / "ckpt.safetensors");
  auto loaded = checkpoint::load_model(dir.path / "ckpt.safetensors", torch::kCPU);
  int skipped = 0;
  CHECK(translate(*loaded, dir.path / "in", dir.path / "out", 0, &skipped) == 2);
  CHECK(skipped == 1);
  auto one = read_image(dir.path / "out" / "one.png");
  CHECK(one.width == 30);  // its own size (padded to the generator's stride of 4, cropped back)
  CHECK(read_image(dir.path / "out" / "two.png").width == 64);
  // The loaded generator is the saved one: the same weights (a file round trip), input, kernels
  // and one thread compute both translations.
  auto x = to_tensor(synthetic::sample(synthetic::Split::kTest, Domain::kA, 2, 32, 0)).unsqueeze(0);
  CHECK(torch::equal(loaded->translate(x), t.translate(x)));
  CHECK_THROWS_WITH(translate(*loaded, dir.path / "nope", dir.path / "out", 0), Catch::Contains("does not exist"));
}

TEST_CASE("Tiles: origins on the downsampling grid, ramps that sum to 1 over an overlap", "[translate][tile]") {
  CHECK(tile_origins(96, 32, 8) == std::vector<int64_t>{0, 24, 48, 64});
  CHECK(tile_origins(32, 32, 8) == std::vector<int64_t>{0});
  CHECK(tile_origins(20, 32, 8) == std::vector<int64_t>{0});
  const auto left = tile_ramp(0, 32, 96, 8), right = tile_ramp(24, 32, 96, 8);
  CHECK(left[0].item<float>() == 1.0f);  // the image's border: no ramp
  CHECK(left[31].item<float>() == Approx(0.5 / 8));
  CHECK(torch::allclose(left.slice(0, 24, 32) + right.slice(0, 0, 8), torch::ones({8})));
  CHECK_THROWS_WITH(check_tile_options({10, 0, 4}),
                    Catch::Contains("--tile must be 0 (the whole image) or a multiple of 4 "
                                    "of at least 16 (got 10)"));
  CHECK_THROWS_WITH(check_tile_options({32, 16, 4}),
                    Catch::Contains("--tile-overlap must be a multiple of 4 in [0, --tile / 2) (got 16)"));
  CHECK_THROWS_WITH(check_tile_options({32, 6, 4}), Catch::Contains("(got 6)"));
}

namespace {
/// Pixels of a `height` x `width` image farther than `radius` from every tile edge that is not the
/// image's border: where a network of that receptive-field radius sees the same pixels in a tile as
/// in the whole image.
torch::Tensor away_from_tile_edges(int64_t height, int64_t width, int64_t tile, int64_t overlap, int64_t radius) {
  const int64_t Hp = (height + 3) / 4 * 4, Wp = (width + 3) / 4 * 4, th = std::min(tile, Hp), tw = std::min(tile, Wp);
  auto ok = torch::ones({Hp, Wp}, torch::kBool);
  for (int64_t y : tile_origins(Hp, th, overlap))
    for (int64_t x : tile_origins(Wp, tw, overlap)) {
      auto region = ok.slice(0, y, y + th).slice(1, x, x + tw);
      if (y > 0) region.slice(0, 0, radius).fill_(false);
      if (y + th < Hp) region.slice(0, th - radius, th).fill_(false);
      if (x > 0) region.slice(1, 0, radius).fill_(false);
      if (x + tw < Wp) region.slice(1, tw - radius, tw).fill_(false);
    }
  return ok.slice(0, 0, height).slice(1, 0, width);
}

torch::Tensor pixels_of(const Image& image) {
  return torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width, 3}, torch::kUInt8)
      .to(torch::kInt32);
}

/// A stationary texture: smooth random stripes and noise, the same statistics in every tile.
Image texture(int width, int height, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(-20, 20);
  Image img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        img.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] = static_cast<uint8_t>(
            std::clamp(128 + static_cast<int>(80 * std::sin(0.45 * x + 0.3 * y + c)) + noise(rng), 0, 255));
  return img;
}
}  // namespace

TEST_CASE("Tiled translation equals whole-image translation away from tile borders", "[translate][tile]") {
  torch::set_num_threads(1);
  const Image image = texture(100, 78, 3);  // padded to 100 x 80 on the bottom
  SECTION("a network of receptive-field radius 2: equal beyond 2 pixels from tile edges") {
    const auto net = [](const torch::Tensor& x) {
      namespace F = torch::nn::functional;
      return torch::tanh(F::avg_pool2d(F::pad(x, F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReflect)),
                                       F::AvgPool2dFuncOptions(5).stride(1)) *
                         1.5);
    };
    const Image whole = translate_image(image, net, {});
    const Image tiled = translate_image(image, net, {32, 8, 4});
    REQUIRE(tiled.width == 100);
    REQUIRE(tiled.height == 78);
    const auto diff = (pixels_of(whole) - pixels_of(tiled)).abs().amax(2);
    const auto inside = away_from_tile_edges(78, 100, 32, 8, 2);
    CHECK(diff.masked_select(inside).max().item<int>() <= 1);  // float sums in another order: one level at most
    CHECK(diff.masked_select(inside).to(torch::kFloat32).mean().item<float>() < 0.01);
    CHECK(inside.sum().item<int64_t>() > 100 * 78 / 2);
  }
  SECTION("the generator: instance norm takes its statistics per tile, so tiles differ, less as they grow") {
    auto config = tiny_config();
    Trainer t(config, torch::kCPU);
    {  // He-initialised convolutions: outputs that span the range (the 0.02-gain ones are nearly constant)
      torch::NoGradGuard no_grad;
      torch::manual_seed(5);
      for (auto& p : t.G->parameters())
        if (p.dim() == 4) p.normal_(0.0, std::sqrt(2.0 / static_cast<double>(p[0].numel())));
    }
    const auto net = [&](const torch::Tensor& x) { return t.translate(x); };
    const Image big = texture(200, 152, 4);
    const Image whole = translate_image(big, net, {});
    const float spread = pixels_of(whole).to(torch::kFloat32).std().item<float>();
    CHECK(spread > 30);  // a translation that varies, so that the tolerance below means something
    // Differences away from tile edges (beyond an eighth of the tile), in 8-bit levels, shrink as
    // the tiles grow and their statistics approach the whole image's. Measured: mean 57.6, 23.5,
    // 12.4 and max 220, 105, 62 for tiles of 48, 96 and 128 pixels (overlap a quarter).
    std::vector<float> means;
    for (int64_t tile : {48, 96, 128}) {
      const Image tiled = translate_image(big, net, {tile, tile / 4, 4});
      const auto diff = (pixels_of(whole) - pixels_of(tiled)).abs().amax(2).to(torch::kFloat32);
      const auto inside = away_from_tile_edges(152, 200, tile, tile / 4, tile / 8);
      const float max_inside = diff.masked_select(inside).max().item<float>();
      means.push_back(diff.masked_select(inside).mean().item<float>());
      INFO("tile " << tile << ": max " << max_inside << ", mean " << means.back()
                   << " levels; the whole translation's "
                      "standard deviation: "
                   << spread);
      if (tile == 128) {
        CHECK(max_inside <= 80);
        CHECK(means.back() <= 16);
      }
    }
    CHECK(means[0] > means[1]);
    CHECK(means[1] > means[2]);
  }
}

TEST_CASE("translate keeps each image's size and aspect ratio", "[translate][tile]") {
  torch::set_num_threads(1);
  TempDir dir("translate_size");
  fs::create_directories(dir.path / "in");
  write_png(dir.path / "in" / "wide.png", texture(53, 37, 1));
  write_png(dir.path / "in" / "tall.png", texture(18, 30, 2));
  auto config = tiny_config();
  Trainer t(config, torch::kCPU);
  CHECK(translate(t, dir.path / "in", dir.path / "out", 0) == 2);
  const Image wide = read_image(dir.path / "out" / "wide.png"), tall = read_image(dir.path / "out" / "tall.png");
  CHECK((wide.width == 53 && wide.height == 37));
  CHECK((tall.width == 18 && tall.height == 30));
  // Cropped back from the padded translation: the same pixels as the translation of the padded image.
  const Image padded = translate_image(texture(53, 37, 1), [&](const torch::Tensor& x) { return t.translate(x); }, {});
  CHECK(padded.pixels == read_image(dir.path / "out" / "wide.png").pixels);
  CHECK(translate(t, dir.path / "in", dir.path / "resized", 24, nullptr, {16, 4, 4}) == 2);
  const Image small = read_image(dir.path / "resized" / "wide.png");
  CHECK((small.width == 34 && small.height == 24));  // 53 x 37 with a short side of 24
  CHECK(read_image(dir.path / "resized" / "tall.png").width == 24);
}

// Tests of the trainer's data: folders, single images, the embedded shapes.
#include "trainer/tests/helpers.hpp"

#include <optional>

using namespace trainer_tests;

TEST_CASE("Folder datasets load, skip unreadable images and augment reproducibly", "[data]") {
  torch::set_num_threads(1);
  TempDir dir("data");
  write_synthetic(dir.path, 6, 40, 3);
  // Unreadable entries of every kind, each skipped with a warning and counted:
  write_garbage(dir.path / "trainA" / "broken.jpg");                                    // text named .jpg
  write_garbage(dir.path / "trainA" / "text.png");                                      // text named .png
  std::ofstream(dir.path / "trainA" / "empty.png");                                     // zero bytes
  fs::create_directories(dir.path / "trainA" / "folder.jpg");                           // a directory
  write_truncated(dir.path / "trainA" / "00000.png", dir.path / "trainA" / "half.png",  // a PNG cut in half
                  fs::file_size(dir.path / "trainA" / "00000.png") / 2);
  write_truncated(dir.path / "trainB" / "00000.png", dir.path / "trainB" / "header.png", 40);  // header only
  DataOptions o;
  o.root = dir.path.string();
  o.load_size = 40;
  o.crop_size = 32;
  o.seed = 11;
  std::stringbuf warnings;  // what the loader prints to std::cerr
  std::optional<UnpairedDataset> loaded;
  {
    struct CaptureCerr {  // restores std::cerr even if the constructor throws
      std::streambuf* old;
      ~CaptureCerr() { std::cerr.rdbuf(old); }
    } capture{std::cerr.rdbuf(&warnings)};
    loaded.emplace(o);
  }
  const UnpairedDataset& data = *loaded;
  CHECK(data.skipped() == 6);
  for (const char* name : {"broken.jpg", "text.png", "half.png", "header.png"})
    CHECK_THAT(warnings.str(), Catch::Contains(std::string("skipping unreadable image ")) && Catch::Contains(name));
  CHECK_THAT(warnings.str(), Catch::Contains("empty.png (empty file (0 bytes))"));
  CHECK_THAT(warnings.str(), Catch::Contains("folder.jpg (a directory, not an image file)"));
  CHECK(data.domain_A().size() == 6);
  CHECK(data.domain_B().size() == 6);
  CHECK(data.size() == 6);

  auto b = data.batch(5, 3);
  CHECK(b.real_A.sizes() == torch::IntArrayRef({3, 3, 32, 32}));
  CHECK(b.real_B.sizes() == torch::IntArrayRef({3, 3, 32, 32}));
  CHECK(b.real_A.min().item<float>() >= -1.0f);
  CHECK(b.real_A.max().item<float>() <= 1.0f);

  SECTION("a step's batch depends only on (seed, step)") {
    auto again = UnpairedDataset(o).batch(5, 3);
    CHECK(torch::equal(b.real_A, again.real_A));
    CHECK(torch::equal(b.real_B, again.real_B));
    CHECK_FALSE(torch::equal(b.real_A, data.batch(6, 3).real_A));
  }
  SECTION("an epoch visits every A image once") {
    std::set<int64_t> seen;
    DataOptions exact = o;
    exact.load_size = exact.crop_size = 40;
    exact.flip = false;
    UnpairedDataset d(exact);
    for (int64_t step = 0; step < 6; ++step) {
      auto a = d.batch(step, 1).real_A[0];
      for (size_t i = 0; i < d.domain_A().size(); ++i)
        if (torch::equal(a, to_tensor(d.domain_A()[i]))) seen.insert(static_cast<int64_t>(i));
    }
    CHECK(seen.size() == 6);
  }
  SECTION("a crop of the full size is the image or its mirror") {
    DataOptions full = o;
    full.load_size = full.crop_size = 40;
    UnpairedDataset d(full);
    int mirrored = 0;
    for (int64_t step = 0; step < 12; ++step) {
      auto a = d.batch(step, 1).real_A[0];  // uint8 pixels cropped and flipped, then to_tensor: exact
      bool found = false;
      for (const auto& img : d.domain_A()) {
        auto t = to_tensor(img);
        if (torch::equal(a, t)) found = true;
        if (torch::equal(a, t.flip({2}))) found = true, ++mirrored;
      }
      CHECK(found);
    }
    CHECK(mirrored > 0);
    CHECK(mirrored < 12);
  }
}

TEST_CASE("Dataset errors name the problem", "[data]") {
  TempDir dir("errors");
  DataOptions o;
  o.root = (dir.path / "missing").string();
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("does not exist"));
  o.root = dir.path.string();
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("trainA"));
  fs::create_directories(dir.path / "trainA");
  fs::create_directories(dir.path / "trainB");
  write_garbage(dir.path / "trainA" / "x.png");
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("no readable images") && Catch::Contains("1 skipped"));
  o.crop_size = 30;
  CHECK_THROWS_WITH(UnpairedDataset(o), Catch::Contains("multiple of 4"));
}

TEST_CASE("Single-image mode crops at several scales", "[data]") {
  TempDir dir("single");
  fs::create_directories(dir.path / "trainA");
  fs::create_directories(dir.path / "trainB");
  // A horizontal ramp: the spread of values inside a crop grows with the crop's scale.
  Image ramp;
  ramp.width = 200, ramp.height = 120;
  for (int y = 0; y < ramp.height; ++y)
    for (int x = 0; x < ramp.width; ++x)
      for (int k = 0; k < 3; ++k) ramp.pixels.push_back(static_cast<uint8_t>(x * 255 / 199));
  write_png(dir.path / "trainA" / "a.png", ramp);
  write_png(dir.path / "trainB" / "b.png", ramp);
  DataOptions o;
  o.root = dir.path.string();
  o.single_image = true;
  o.crop_size = 32;
  o.flip = false;
  UnpairedDataset data(o);
  double lo = 1e9, hi = 0;
  for (int64_t step = 0; step < 20; ++step) {
    auto a = data.batch(step, 1).real_A;
    CHECK(a.sizes() == torch::IntArrayRef({1, 3, 32, 32}));
    double spread = (a.max() - a.min()).item<double>();
    lo = std::min(lo, spread), hi = std::max(hi, spread);
  }
  CHECK(hi > 2.0 * lo);
}

TEST_CASE("Synthetic domains share the mask and differ only by stripes", "[data]") {
  auto spec = synthetic::make_spec(synthetic::Split::kTest, Domain::kA, 3, 64, 0);
  auto a = to_tensor(synthetic::render(spec, Domain::kA, 64));
  auto b = to_tensor(synthetic::render(spec, Domain::kB, 64));
  auto m = synthetic::mask(spec, 64);
  CHECK(evaluation::iou(evaluation::shape_mask(a), m) > 0.95);
  CHECK(evaluation::iou(evaluation::shape_mask(b), m) > 0.95);
  auto interior = evaluation::erode(m, 2);
  CHECK(evaluation::gradient_energy(a, interior) < 1e-3);
  CHECK(evaluation::gradient_energy(b, interior) > 0.05);
  // Train split is unpaired: A_i and B_i are different shapes in general.
  int differ = 0;
  for (int i = 0; i < 10; ++i) {
    auto sa = synthetic::make_spec(synthetic::Split::kTrain, Domain::kA, i, 64, 0);
    auto sb = synthetic::make_spec(synthetic::Split::kTrain, Domain::kB, i, 64, 0);
    differ += sa.cx != sb.cx;
  }
  CHECK(differ >= 9);
}

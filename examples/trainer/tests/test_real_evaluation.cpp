// evaluate --data: FID/KID of translated testA vs real testB in a TorchScript network's features.
//
// No weights can be downloaded here, so the feature network is a small random conv net that the
// test writes itself: a torch::jit::Module built and scripted from C++ (Module::define), saved
// with torch.jit's format (Module::save) and loaded back like a user's Inception export.
#include "trainer/tests/evaluation_helpers.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

using namespace trainer;
using namespace trainer_tests::eval_fixtures;
namespace fs = std::filesystem;

TEST_CASE("evaluate --data scores G(testA) against testB with finite FID and KID in JSON", "[evaluate_real]") {
  trainer_tests::TempDir dir("real_eval_folders");
  write_folder(dir.path / "testA", 12, 32, 24, 100);
  write_folder(dir.path / "testB", 10, 40, 32, 200);
  metrics::FeatureNetwork net(write_network(dir.path, 6), torch::kCPU);
  evaluation::RealDataOptions options;
  options.batch = 5;  // several batches, one partial
  auto scores = evaluation::evaluate_folders(darken, net, dir.path, options);
  CHECK(scores.mode == "folders");
  CHECK(scores.translated == 12);
  CHECK(scores.real == 10);
  CHECK(scores.dim == 6);
  CHECK(std::isfinite(scores.fid));
  CHECK(scores.fid > 0);
  CHECK(std::isfinite(scores.kid.mean));
  CHECK(scores.kid.subset_size == 10);
  CHECK_FALSE(scores.rank_deficient);
  const auto json = evaluation::to_json(scores);
  INFO(json);
  CHECK(json_number(json, "fid") == Approx(scores.fid).margin(1e-6));
  CHECK(json_number(json, "kid") == Approx(scores.kid.mean).margin(1e-6));
  CHECK(json.find("\"fid_rank_deficient\":false") != std::string::npos);

  SECTION("the same images through the identity score FID 0; --size resizes every image") {
    write_folder(dir.path / "same" / "testA", 6, 32, 32, 300);
    write_folder(dir.path / "same" / "testB", 6, 32, 32, 300);
    auto same = evaluation::evaluate_folders(identity, net, dir.path / "same", options);
    // 0 up to rounding: the covariance of 6 images is singular, and sqrt of its eigenvalues'
    // rounding noise (~1e-17) is ~1e-9.
    CHECK(std::abs(same.fid) < 1e-6);
    options.size = 16;
    auto resized = evaluation::evaluate_folders(identity, net, dir.path / "same", options);
    CHECK(std::abs(resized.fid) < 1e-6);
    CHECK(resized.rank_deficient);  // 6 images, 6 feature dimensions
  }
  SECTION("the features are the network's: a different random network gives a different FID") {
    fs::create_directories(dir.path / "other");
    metrics::FeatureNetwork other(write_network(dir.path / "other", 6, "return h", 2), torch::kCPU);
    CHECK(evaluation::evaluate_folders(darken, other, dir.path, options).fid != Approx(scores.fid));
  }
}

TEST_CASE("evaluate --data on a single-image pair compares crops of G(A) with crops of B", "[evaluate_real]") {
  trainer_tests::TempDir dir("real_eval_single");
  write_folder(dir.path / "trainA", 1, 80, 60, 1);
  write_folder(dir.path / "trainB", 1, 64, 64, 2);
  metrics::FeatureNetwork net(write_network(dir.path, 4), torch::kCPU);
  evaluation::RealDataOptions options;
  options.view_size = 48;
  options.crop_size = 24;
  options.crops = 20;
  options.kid.subsets = 10;
  auto scores = evaluation::evaluate_single_image(darken, net, dir.path, options);
  CHECK(scores.mode == "single-image");
  CHECK(scores.translated == 20);
  CHECK(scores.real == 20);
  CHECK(std::isfinite(scores.fid));
  CHECK(std::isfinite(scores.kid.mean));
  // Seeded: the same call gives the same numbers.
  CHECK(evaluation::evaluate_single_image(darken, net, dir.path, options).fid == scores.fid);
}

TEST_CASE("evaluate --data rejects bad feature networks and data with errors naming what was expected",
          "[evaluate_real]") {
  trainer_tests::TempDir dir("real_eval_bad");
  write_folder(dir.path / "testA", 4, 32, 32, 10);
  write_folder(dir.path / "testB", 4, 32, 32, 20);
  evaluation::RealDataOptions options;

  SECTION("a network with the wrong output shape or type") {
    metrics::FeatureNetwork spatial(write_network(dir.path, 3, "return torch.relu(torch.conv2d(x, self.weight))"),
                                    torch::kCPU);
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, spatial, dir.path, options),
                      Catch::Contains("[B, D] or [B, D, 1, 1]") && Catch::Contains("got shape [4, 3, 30, 30]"));
    metrics::FeatureNetwork tuple(write_network(dir.path, 5, "return (h, h)"), torch::kCPU);
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, tuple, dir.path, options),
                      Catch::Contains("must return a tensor") && Catch::Contains("Tuple"));
    metrics::FeatureNetwork flat_batch(write_network(dir.path, 7, "return h.sum(0)"), torch::kCPU);
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, flat_batch, dir.path, options),
                      Catch::Contains("got shape [7, 1, 1]"));
  }
  metrics::FeatureNetwork net(write_network(dir.path, 4), torch::kCPU);
  SECTION("too few images for FID") {
    write_folder(dir.path / "one" / "testA", 1, 32, 32, 30);
    write_folder(dir.path / "one" / "testB", 4, 32, 32, 40);
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, net, dir.path / "one", options),
                      Catch::Contains("testA") && Catch::Contains("1 readable") && Catch::Contains("at least 2") &&
                          Catch::Contains("2049"));
  }
  SECTION("images of mixed sizes") {
    write_png(dir.path / "testB" / "zz_wide.png", random_image(48, 32, 5));
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, net, dir.path, options),
                      Catch::Contains("mixed sizes") && Catch::Contains("zz_wide.png") && Catch::Contains("48x32") &&
                          Catch::Contains("--size"));
    options.size = 32;  // resizing makes them one size
    CHECK_NOTHROW(evaluation::evaluate_folders(identity, net, dir.path, options));
  }
  SECTION("an empty or missing testA / testB") {
    fs::create_directories(dir.path / "empty" / "testA");
    write_folder(dir.path / "empty" / "testB", 3, 32, 32, 50);
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, net, dir.path / "empty", options),
                      Catch::Contains("testA") && Catch::Contains("0 readable") && Catch::Contains("0 image files"));
    std::ofstream(dir.path / "empty" / "testA" / "broken.png") << "garbage";
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, net, dir.path / "empty", options),
                      Catch::Contains("0 readable") && Catch::Contains("1 unreadable"));
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, net, dir.path / "nowhere", options),
                      Catch::Contains("testA") && Catch::Contains("does not exist"));
  }
  SECTION("option values") {
    options.size = 30;
    CHECK_THROWS_WITH(evaluation::evaluate_folders(identity, net, dir.path, options),
                      Catch::Contains("--size") && Catch::Contains("multiple of 4") && Catch::Contains("got 30"));
    options.size = 0;
    options.crops = 1;
    CHECK_THROWS_WITH(evaluation::evaluate_single_image(identity, net, dir.path, options),
                      Catch::Contains("--crops") && Catch::Contains("at least 2") && Catch::Contains("got 1"));
  }
}

TEST_CASE("evaluate --folders compares two folders of images at their own sizes, no generator", "[evaluate_real]") {
  trainer_tests::TempDir dir("real_eval_two");
  write_folder(dir.path / "x", 5, 30, 22, 700);  // not multiples of 4: kept as they are
  write_folder(dir.path / "y", 6, 40, 40, 800);
  metrics::FeatureNetwork net(write_network(dir.path, 4), torch::kCPU);
  evaluation::RealDataOptions options;
  const auto scores = evaluation::evaluate_two_folders(net, dir.path / "x", dir.path / "y", options);
  CHECK(scores.mode == "two-folders");
  CHECK(scores.translated == 5);
  CHECK(scores.real == 6);
  // The same features as the images' own tensors through the network: FID of the folders
  // equals FID of the features computed here.
  auto features = [&](const fs::path& folder) {
    std::vector<torch::Tensor> images;
    std::string error;
    for (const auto& file : list_images(folder)) images.push_back(to_tensor(read_image(file, &error)));
    return net.features(torch::stack(images));
  };
  CHECK(scores.fid == Approx(metrics::fid(features(dir.path / "x"), features(dir.path / "y"))).epsilon(1e-12));
  CHECK(std::abs(evaluation::evaluate_two_folders(net, dir.path / "x", dir.path / "x", options).fid) < 1e-6);
  CHECK_THROWS_WITH(
      evaluation::evaluate_two_folders(net, dir.path / "x", dir.path / "none", options),
      Catch::Contains("--folders") && Catch::Contains("(the second)") && Catch::Contains("does not exist"));
}

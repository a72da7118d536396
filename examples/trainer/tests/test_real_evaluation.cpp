// evaluate --data: FID/KID of translated testA vs real testB in a TorchScript network's features.
//
// No weights can be downloaded here, so the feature network is a small random conv net that the
// test writes itself: a torch::jit::Module built and scripted from C++ (Module::define), saved
// with torch.jit's format (Module::save) and loaded back like a user's Inception export.
#include "trainer/eval/real_evaluation.hpp"
#include "trainer/tests/helpers.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

using namespace trainer;
namespace fs = std::filesystem;

namespace {


/// A random feature network: conv 3x3 stride 2 -> ReLU -> global average pool, `dim` channels.
/// `tail` post-processes the pooled `[B, dim, 1, 1]` map (the wrong-output cases).
fs::path write_network(const fs::path& dir, int64_t dim, const std::string& tail = "return h", uint64_t seed = 1) {
  torch::jit::Module m("FeatureNet");
  auto gen = at::detail::createCPUGenerator(seed);
  m.register_parameter("weight", at::randn({dim, 3, 3, 3}, gen, torch::TensorOptions()), false);
  m.register_parameter("bias", at::randn({dim}, gen, torch::TensorOptions()) * 0.1, false);
  m.define(R"(
def forward(self, x):
    h = torch.relu(torch.conv2d(x * 2.0 - 1.0, self.weight, self.bias, [2, 2], [1, 1]))
    h = torch.adaptive_avg_pool2d(h, [1, 1])
    )" + tail + "\n");
  const auto path = dir / fmt::format("features_{}.pt", dim);
  m.save(path.string());
  return path;
}

/// Smooth random colour fields (a few blobs), so that features vary between images.
Image random_image(int width, int height, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Image img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  const double cx = u(rng) * width, cy = u(rng) * height, r = (0.2 + 0.5 * u(rng)) * width;
  const double base[3] = {u(rng), u(rng), u(rng)}, blob[3] = {u(rng), u(rng), u(rng)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double w = std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (r * r));
      for (int c = 0; c < 3; ++c)
        img.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>(255.0 * ((1 - w) * base[c] + w * blob[c]) * (0.9 + 0.1 * u(rng)));
    }
  return img;
}

void write_folder(const fs::path& dir, int count, int width, int height, uint64_t seed) {
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) write_png(dir / fmt::format("{:03d}.png", i), random_image(width, height, seed + i));
}

/// A stand-in generator: darkens the image (the evaluation does not depend on how G works).
torch::Tensor darken(const torch::Tensor& x) { return x * 0.5 - 0.25; }
torch::Tensor identity(const torch::Tensor& x) { return x; }

double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  REQUIRE(at != std::string::npos);
  return std::stod(json.substr(at + key.size() + 3));
}

}  // namespace

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

  SECTION("a features file that is not TorchScript") {
    std::ofstream(dir.path / "weights.pt") << "not a zip archive";
    CHECK_THROWS_WITH(metrics::FeatureNetwork(dir.path / "weights.pt", torch::kCPU),
                      Catch::Contains("--features") && Catch::Contains("weights.pt") && Catch::Contains("TorchScript"));
    CHECK_THROWS_WITH(metrics::FeatureNetwork(dir.path / "missing.pt", torch::kCPU),
                      Catch::Contains("does not exist"));
  }
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
  CHECK_THROWS_WITH(evaluation::evaluate_two_folders(net, dir.path / "x", dir.path / "none", options),
                    Catch::Contains("--folders") && Catch::Contains("(the second)") && Catch::Contains("does not exist"));
}

TEST_CASE("evaluate --run scores every kept checkpoint, writes the table and names the best", "[evaluate_real]") {
  torch::set_num_threads(1);
  trainer_tests::TempDir dir("real_eval_run");
  const auto data = dir.path / "data";
  write_folder(data / "trainA", 6, 32, 32, 900);
  write_folder(data / "trainB", 6, 32, 32, 910);
  write_folder(data / "testA", 6, 32, 32, 920);
  write_folder(data / "testB", 7, 32, 32, 930);
  auto config = trainer_tests::tiny_config();
  config.data.root = data.string();
  config.data.load_size = config.data.crop_size = 32;
  config.steps = 4;
  RunOptions run;
  run.quiet = true;
  run.log_every = run.sample_every = 4;
  run.checkpoint_every = 1;
  run.keep_checkpoints = 10;
  run.run_dir = dir.path / "run";
  train(config, run, torch::kCPU);
  const auto net_file = write_network(dir.path, 5);
  evaluation::RealDataOptions options;
  options.kid.subsets = 5;
  const std::string json = evaluate_run(run.run_dir, "", net_file, options, false, torch::kCPU, true);
  INFO(json);

  // One row per kept checkpoint (steps 1-4; ckpt.safetensors is step 4's), each the FID that evaluate
  // --checkpoint gives that file, and the best is the lowest of them.
  metrics::FeatureNetwork net(net_file, torch::kCPU);
  std::map<int64_t, double> fids;
  for (const auto& [step, file] : checkpoint::list_kept(run.run_dir)) {
    auto model = checkpoint::load_model(file, torch::kCPU);
    fids[step] = evaluate_real(*model, data, net_file, options, false).fid;
  }
  REQUIRE(fids.size() == 4);
  int64_t best = fids.begin()->first;
  for (const auto& [step, fid] : fids)
    if (fid < fids[best]) best = step;
  const auto csv = trainer_tests::read_text(run.run_dir / "checkpoint_scores.csv");
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  CHECK(line == "step,fid,kid,kid_std,checkpoint");
  int rows = 0;
  for (; std::getline(lines, line); ++rows) {
    const int64_t step = std::stoll(line);
    REQUIRE(fids.count(step) == 1);
    CHECK(std::stod(line.substr(line.find(',') + 1)) == Approx(fids[step]).epsilon(1e-5).margin(1e-6));
    CHECK_THAT(line, Catch::EndsWith(fmt::format(",checkpoints/step_{:08}.safetensors", step)));
  }
  CHECK(rows == 4);
  CHECK(json_number(json.substr(json.find("\"best\":")), "step") == best);
  CHECK(fs::equivalent(run.run_dir / "best.safetensors", checkpoint::kept_path(run.run_dir, best)));
  CHECK(trainer_tests::read_text(run.run_dir / "checkpoint_scores.json") == json + "\n");

  // index.html: the losses' charts and the FID and KID charts, well-formed, the best named.
  const auto html = trainer_tests::read_text(run.run_dir / "index.html");
  std::map<std::string, int> elements;
  CHECK(trainer_tests::markup_problems(html, &elements) == "");
  CHECK(elements["svg"] == 8);
  CHECK(elements["tr"] == 5);
  CHECK_THAT(html, Catch::Contains(">FID</text>") && Catch::Contains(fmt::format("best: step {} (FID", best)));

  SECTION("refused: a folder without checkpoints, a run on the embedded dataset without --data") {
    CHECK_THROWS_WITH(evaluate_run(dir.path / "data", "", net_file, options, false, torch::kCPU, true),
                      Catch::Contains("holds no checkpoint") && Catch::Contains("--keep-checkpoints"));
    auto synthetic = trainer_tests::tiny_config();
    synthetic.steps = 0;
    run.run_dir = dir.path / "synthetic";
    run.keep_checkpoints = 0;
    train(synthetic, run, torch::kCPU);
    CHECK_THROWS_WITH(evaluate_run(run.run_dir, "", net_file, options, false, torch::kCPU, true),
                      Catch::Contains("--data must be a folder") && Catch::Contains("synth --output"));
    // With --data, the single checkpoint (step 0) is the table and the best.
    const auto one = evaluate_run(run.run_dir, data, net_file, options, false, torch::kCPU, true);
    CHECK(json_number(one.substr(one.find("\"best\":")), "step") == 0);
  }
}

#ifdef PATCHGCL_TRAINER_BINARY
TEST_CASE("patchgcl-trainer evaluate --data --features prints JSON with finite fid and kid", "[evaluate_real]") {
  trainer_tests::TempDir dir("real_eval_cli");
  write_folder(dir.path / "data" / "testA", 5, 32, 32, 500);
  write_folder(dir.path / "data" / "testB", 6, 32, 32, 600);
  const auto net = write_network(dir.path, 4);
  const std::string bin = PATCHGCL_TRAINER_BINARY;
  const auto run = dir.path / "run";
  REQUIRE(std::system(fmt::format("'{}' train --run '{}' --synthetic-size 32 --ngf 8 --n-blocks 1 --ndf 8 --steps 0 "
                                  "> /dev/null 2>&1", bin, run.string()).c_str()) == 0);
  const auto json_file = dir.path / "scores.json";
  const auto stderr_file = dir.path / "stderr.txt";
  auto evaluate = [&](const std::string& extra) {
    return std::system(fmt::format("'{}' evaluate --checkpoint '{}' --data '{}' {} --json '{}' > /dev/null 2> '{}'", bin,
                                   (run / "ckpt.safetensors").string(), (dir.path / "data").string(), extra, json_file.string(),
                                   stderr_file.string()).c_str());
  };
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  REQUIRE(evaluate(fmt::format("--features '{}' --kid-subsets 10", net.string())) == 0);
  const auto json = read(json_file);
  INFO(json);
  CHECK(json.find("\"mode\":\"folders\"") != std::string::npos);
  CHECK(std::isfinite(json_number(json, "fid")));
  CHECK(std::isfinite(json_number(json, "kid")));
  CHECK(json_number(json, "translated") == 5);
  CHECK(json_number(json, "real") == 6);
  // Single-image mode on the same folders: the first image of each, 8 crops of 16 px.
  REQUIRE(evaluate(fmt::format("--features '{}' --single-image --crops 8 --crop-size 16 --view-size 32", net.string())) == 0);
  CHECK(read(json_file).find("\"mode\":\"single-image\"") != std::string::npos);
  CHECK(std::isfinite(json_number(read(json_file), "fid")));
  // --data without --features, and a features file that is not TorchScript: exit 1 with the reason.
  CHECK(evaluate("") != 0);
  CHECK(read(stderr_file).find("--features") != std::string::npos);
  CHECK(evaluate(fmt::format("--features '{}'", (dir.path / "data" / "testA" / "000.png").string())) != 0);
  CHECK(read(stderr_file).find("TorchScript") != std::string::npos);
  // Two folders, no checkpoint; a run's checkpoints (--run); nothing to evaluate.
  auto command = [&](const std::string& args) {
    return std::system(fmt::format("'{}' evaluate {} --json '{}' > /dev/null 2> '{}'", bin, args, json_file.string(),
                                   stderr_file.string()).c_str());
  };
  const auto folder = [&](const char* name) { return "'" + (dir.path / "data" / name).string() + "'"; };
  REQUIRE(command(fmt::format("--folders {} {} --features '{}'", folder("testA"), folder("testB"), net.string())) == 0);
  CHECK(read(json_file).find("\"mode\":\"two-folders\"") != std::string::npos);
  CHECK(json_number(read(json_file), "real") == 6);
  REQUIRE(command(fmt::format("--run '{}' --data '{}' --features '{}'", run.string(), (dir.path / "data").string(),
                              net.string())) == 0);
  CHECK(read(json_file).find("\"checkpoints\":[{\"step\":0,") != std::string::npos);
  CHECK(fs::exists(run / "best.safetensors"));
  CHECK(command("") != 0);
  CHECK(read(stderr_file).find("--run RUN or --folders X Y") != std::string::npos);
  CHECK(command(fmt::format("--run '{}' --checkpoint '{}'", run.string(), run.string())) != 0);
  CHECK(read(stderr_file).find("excludes") != std::string::npos);
}
#endif

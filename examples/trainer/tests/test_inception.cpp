// Tests of the trainer's FID Inception (nets/inception*.hpp): its layout, its weight file (safetensors
// under pytorch-fid's names, every tensor checked), the fuzz corpus, the TensorFlow 1 resize, and pool3
// features of real photographs for the comparison with the pinned TorchScript network (ctest
// trainer_inception_torchscript).
#include "trainer/tests/evaluation_helpers.hpp"
#include "trainer/tests/helpers.hpp"

#include <cmath>
#include <limits>

using namespace trainer_tests;

namespace {

/// Random weights for every convolution of the FID Inception: He-scaled kernels, zero mean, unit
/// variance and a small bias, so that activations neither vanish nor explode over 94 layers.
std::map<std::string, torch::Tensor> random_inception_weights() {
  torch::manual_seed(5);
  std::map<std::string, torch::Tensor> dict;
  for (const auto& c : inception_convs()) {
    dict[c.name + ".conv.weight"] = torch::randn({c.out, c.in, c.kh, c.kw}) * std::sqrt(2.0 / (c.in * c.kh * c.kw));
    dict[c.name + ".bn.bias"] = torch::randn({c.out}) * 0.1;
    dict[c.name + ".bn.running_mean"] = torch::zeros({c.out});
    dict[c.name + ".bn.running_var"] = torch::ones({c.out});
  }
  return dict;
}

fs::path write_inception_weights(const fs::path& path, const std::map<std::string, torch::Tensor>& tensors) {
  patchgcl::io::write_safetensors(path.string(), tensors, {{"source", "test"}});
  return path;
}

}  // namespace

TEST_CASE("The FID Inception has pytorch-fid's 94 convolutions, whose channels chain", "[inception]") {
  const auto& convs = inception_convs();
  REQUIRE(convs.size() == 94);
  CHECK(convs.front().name == "Conv2d_1a_3x3");
  CHECK(convs.back().name == "Mixed_7c.branch_pool");
  int64_t parameters = 0;
  std::set<std::string> names;
  for (const auto& c : convs) {
    names.insert(c.name);
    parameters += c.out * c.in * c.kh * c.kw + 3 * c.out;
  }
  CHECK(names.size() == 94);
  CHECK(parameters == 21802784);  // the pinned network's state dict, counted by scripts/export-inception.py
  // A 1 x 7 convolution pads its width only; the stride-2 reductions pad nothing.
  const auto find = [&](const std::string& name) {
    for (const auto& c : convs)
      if (c.name == name) return c;
    FAIL("no convolution " << name);
    return convs.front();
  };
  const auto wide = find("Mixed_6b.branch7x7_2");
  CHECK((wide.kh == 1 && wide.kw == 7 && wide.ph == 0 && wide.pw == 3));
  const auto reduce = find("Mixed_7a.branch3x3_2");
  CHECK((reduce.stride == 2 && reduce.ph == 0 && reduce.in == 192 && reduce.out == 320));
  CHECK(find("Mixed_7c.branch1x1").in == 2048);
}

TEST_CASE("TensorFlow 1's bilinear resize samples output i at i * in / out, clamped at the border", "[inception]") {
  // 3 -> 5: positions 0, 0.6, 1.2, 1.8, 2.4; the last interpolates between pixel 2 and itself.
  const auto x = torch::tensor({10.0F, 20.0F, 40.0F}).view({1, 1, 1, 3});
  const auto y = tf1_resize_axis(x, 3, 5).flatten();
  const auto expected = torch::tensor({10.0F, 16.0F, 24.0F, 36.0F, 40.0F});
  CHECK(torch::allclose(y, expected, 1e-6, 1e-5));
  // The input steps: 8-bit quantisation, 299 x 299, (v - 128) / 128.
  const auto in = inception_input(torch::full({2, 3, 7, 5}, 0.5F));
  CHECK(in.sizes() == torch::IntArrayRef({2, 3, 299, 299}));
  CHECK(in.allclose(torch::full_like(in, 0.0F)));  // round(127.5) = 128
}

TEST_CASE("FID Inception weights load from safetensors; every other file is refused naming the tensor", "[inception]") {
  TempDir dir("inception");
  const auto dict = random_inception_weights();
  auto net = FIDInception::load(write_inception_weights(dir.path / "fid.safetensors", dict).string(), torch::kCPU);
  torch::manual_seed(0);
  const auto f = net.features(torch::rand({2, 3, 40, 56}));
  REQUIRE(f.sizes() == torch::IntArrayRef({2, 2048}));
  CHECK(torch::isfinite(f).all().item<bool>());
  CHECK(f.min().item<float>() >= 0.0F);  // the mean of ReLU outputs
  CHECK(f.max().item<float>() > 0.0F);
  CHECK_FALSE(torch::allclose(f[0], f[1]));
  CHECK_THROWS_WITH(net.features(torch::rand({2, 1, 8, 8})), Catch::Contains("expected images [B, 3, H, W]"));

  auto refused = [&](const std::string& name, std::map<std::string, torch::Tensor> d, const std::string& phrase) {
    const auto path = write_inception_weights(dir.path / name, d);
    CHECK_THROWS_WITH(read_inception_weights(path.string()),
                      Catch::Contains("Inception weight file '" + path.string() + "'") && Catch::Contains(phrase));
  };
  auto d = dict;
  d["fc.weight"] = torch::zeros({2, 2});
  refused("unknown.safetensors", d, "holds the tensor 'fc.weight', which is none of the FID Inception's");
  d = dict;
  d["Mixed_6b.branch7x7_2.conv.weight"] = torch::zeros({128, 128, 7, 1});
  refused("shape.safetensors", d,
          "tensor 'Mixed_6b.branch7x7_2.conv.weight' has shape [128,128,7,1] and dtype F32, "
          "expected [128,128,1,7] and F32");
  d = dict;
  d["Conv2d_1a_3x3.bn.bias"] = d.at("Conv2d_1a_3x3.bn.bias").to(torch::kFloat64);
  refused("f64.safetensors", d, "dtype F64, expected [32] and F32");
  d = dict;
  d.erase("Mixed_7c.branch_pool.bn.running_var");
  refused("missing.safetensors", d, "lacks the tensor 'Mixed_7c.branch_pool.bn.running_var' (F32 [192])");
  d = dict;
  d["Mixed_5b.branch1x1.conv.weight"] = d.at("Mixed_5b.branch1x1.conv.weight").clone();
  d["Mixed_5b.branch1x1.conv.weight"].view({-1})[7] = std::numeric_limits<float>::infinity();
  refused("inf.safetensors", d, "tensor 'Mixed_5b.branch1x1.conv.weight' contains NaN or Inf");
  d = dict;
  d["Conv2d_4a_3x3.bn.running_var"] = d.at("Conv2d_4a_3x3.bn.running_var").clone().index_put_({3}, -0.5F);
  refused("variance.safetensors", d, "tensor 'Conv2d_4a_3x3.bn.running_var' has a negative variance (-0.5)");
  std::ofstream(dir.path / "inception.pt") << "PK\x03\x04 a TorchScript archive";
  CHECK_THROWS_WITH(read_inception_weights((dir.path / "inception.pt").string()),
                    Catch::Contains("is not a safetensors file of the FID Inception (write one with python3 "
                                    "scripts/export-inception.py)"));
  CHECK_THROWS_WITH(read_inception_weights((dir.path / "none.safetensors").string()),
                    Catch::Contains("cannot open Inception weight file"));
}

TEST_CASE("A feature file that is not what its option reads is refused, naming the option and the file",
          "[inception]") {
  TempDir dir("inception_files");
  std::ofstream(dir.path / "weights.pt") << "not a zip archive";
  const metrics::FeatureFile torchscript{dir.path / "weights.pt", metrics::FeatureFormat::kTorchScript};
  CHECK_THROWS_WITH(metrics::FeatureNetwork(torchscript, torch::kCPU), Catch::Contains("--features-torchscript") &&
                                                                           Catch::Contains("weights.pt") &&
                                                                           Catch::Contains("TorchScript"));
  CHECK_THROWS_WITH(metrics::FeatureNetwork({dir.path / "weights.pt"}, torch::kCPU),
                    Catch::Contains("--features: Inception weight file") && Catch::Contains("weights.pt") &&
                        Catch::Contains("is not a safetensors file of the FID Inception") &&
                        Catch::Contains("python3 scripts/export-inception.py"));
  CHECK_THROWS_WITH(
      metrics::FeatureNetwork({dir.path / "missing.pt"}, torch::kCPU),
      Catch::Contains("--features: expected an Inception weight file") && Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(
      metrics::FeatureNetwork({dir.path / "missing.pt", metrics::FeatureFormat::kTorchScript}, torch::kCPU),
      Catch::Contains("--features-torchscript: expected a TorchScript file") && Catch::Contains("does not exist"));
  // Through the binary: --features on a file that is not the weights, and both options at once.
  const auto a = dir.path / "a", b = dir.path / "b";
  trainer_tests::eval_fixtures::write_folder(a, 2, 16, 16, 1);
  trainer_tests::eval_fixtures::write_folder(b, 2, 16, 16, 3);
  auto evaluate = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"evaluate", "--folders", a.string(), b.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_trainer(args, dir.path / "evaluate.out");
  };
  auto png = evaluate({"--features", (a / "000.png").string()});
  CHECK(png.status == 1);
  CHECK_THAT(png.output, Catch::Contains("is not a safetensors file of the FID Inception"));
  auto both = evaluate({"--features", "x.safetensors", "--features-torchscript", "x.pt"});
  CHECK(both.status != 0);
  CHECK_THAT(both.output, Catch::Contains("excludes"));
  auto none = evaluate({});
  CHECK(none.status == 1);
  CHECK_THAT(none.output, Catch::Contains("--features must be the standard FID network's weights with --folders"));
}

TEST_CASE("Every file of the Inception weight fuzz corpus loads or is refused with a message", "[inception][faults]") {
  // fuzz/corpus/trainer_inception_weights/ (fuzz/trainer_inception_weights.cpp): first byte % 95 = the
  // convolutions needed, the rest a weight file. seed-conv* load; seed-refused-* are refused, naming the file.
  const fs::path corpus = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_inception_weights";
  REQUIRE(fs::is_directory(corpus));
  int seeds = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string file = entry.path().filename().string(), data = read_text(entry.path());
    REQUIRE_FALSE(data.empty());
    std::string error;
    try {
      const size_t needed = static_cast<unsigned char>(data[0]) % 95;
      const size_t loaded = parse_inception_weights(data.substr(1), "corpus", needed).size();  // throws when refused
      CHECK(loaded == 4 * needed);
    } catch (const std::runtime_error& e) {
      error = e.what();
      CHECK_THAT(error, Catch::Contains("Inception weight file 'corpus'"));
    }
    INFO(file << ": " << (error.empty() ? "loaded" : error));
    if (file.rfind("seed-refused-", 0) == 0) {
      CHECK_FALSE(error.empty());
      ++seeds;
    } else if (file.rfind("seed-", 0) == 0) {
      CHECK(error.empty());
      ++seeds;
    }
  }
  CHECK(seeds == 6);
}

TEST_CASE(
    "FID Inception pool3 of real images, for the TorchScript network to compare (ctest "
    "trainer_inception_torchscript)",
    "[.inception_torchscript]") {
  // tests/inception_torchscript/run.sh: scripts/export-inception.py wrote the weights; check.py runs the
  // pinned TorchScript network on the images written here (uint8, as decoded) and on the network's input
  // computed here, and compares its pool3 with this one's. Each photograph is scored at its own size and
  // at 256 x 256 (the paper's size).
  const char* weights = std::getenv("PATCHGCL_INCEPTION_WEIGHTS");
  const char* data = std::getenv("PATCHGCL_INCEPTION_DATA");
  const char* out = std::getenv("PATCHGCL_INCEPTION_OUT");
  REQUIRE((weights && data && out));
  auto net = FIDInception::load(weights, torch::kCPU);
  std::map<std::string, torch::Tensor> written;
  int index = 0;
  for (const char* side : {"trainA", "trainB"}) {
    for (const auto& file : list_images(fs::path(data) / side)) {
      std::string error;
      const Image image = read_image(file, &error);
      INFO(file.string() << ": " << error);
      REQUIRE_FALSE(image.empty());
      for (const Image& scored : {image, resize(image, 256, 256)}) {
        const auto x = ((to_tensor(scored) + 1.0) * 0.5).unsqueeze(0);  // [1, 3, H, W] in [0, 1]
        const auto key = std::to_string(index++);
        written["image_" + key] = torch::round(x * 255.0).to(torch::kUInt8);
        written["input_" + key] = inception_input(x);
        written["pool3_" + key] = net.features(x);
      }
    }
  }
  REQUIRE(index >= 4);
  patchgcl::io::write_safetensors(out, written);
}

TEST_CASE("Random FID Inception weights and a TorchScript feature network (ctest trainer_no_torchscript)",
          "[.no_torchscript_files]") {
  // tests/no_torchscript/run.sh runs `evaluate --features` on the first (the native network end to end)
  // and `evaluate --features-torchscript` on the second (the control its interposer must stop).
  const char* out = std::getenv("PATCHGCL_FILES_OUT");
  REQUIRE(out);
  write_inception_weights(fs::path(out) / "inception_random.safetensors", random_inception_weights());
  const auto net = trainer_tests::eval_fixtures::write_network(out, 4);
  fs::rename(net.path, fs::path(out) / "features.pt");
}

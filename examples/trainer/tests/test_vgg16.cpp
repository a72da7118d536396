// Tests of the trainer's VGG16 feature network: its weight file (safetensors under torchvision's
// names, every tensor checked), the fuzz corpus, and activations for the torchvision comparison.
#include "trainer/tests/helpers.hpp"

using namespace trainer_tests;

TEST_CASE("VGG16 weights load from a safetensors file of torchvision's names", "[vgg16]") {
  TempDir dir("vgg");
  const auto dict = random_vgg16_weights();
  VGG16Features vgg;
  vgg->load_weights(write_vgg16_weights(dir.path / "vgg.safetensors", dict));
  for (const auto& p : vgg->named_parameters()) CHECK(torch::equal(p.value(), dict.at("features." + p.key())));
  CHECK_FALSE(vgg->parameters()[0].requires_grad());

  auto feats = vgg->forward(torch::zeros({1, 3, 32, 32}), VGG16FeaturesImpl::paper_layers());
  REQUIRE(feats.size() == 3);
  CHECK(feats[0].sizes() == torch::IntArrayRef({1, 256, 8, 8}));
  CHECK(feats[1].sizes() == torch::IntArrayRef({1, 512, 4, 4}));
  CHECK(feats[2].sizes() == torch::IntArrayRef({1, 512, 4, 4}));
  // relu3_1 by hand from the loaded weights: conv1_1 .. conv3_1 with pooling, on the normalised input.
  {
    auto x = torch::rand({1, 3, 16, 16}) * 2 - 1;
    auto h = ((x + 1) * 0.5 - torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1})) /
             torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
    auto conv = [&](const torch::Tensor& in, int idx) {
      auto k = std::to_string(idx);
      return torch::relu(
          torch::conv2d(in, dict.at("features." + k + ".weight"), dict.at("features." + k + ".bias"), 1, 1));
    };
    h = torch::max_pool2d(conv(conv(h, 0), 2), 2, 2);
    h = torch::max_pool2d(conv(conv(h, 5), 7), 2, 2);
    h = conv(h, 10);
    CHECK(torch::allclose(vgg->forward(x, {11})[0], h, 1e-4, 1e-5));
  }
}

TEST_CASE(
    "A VGG16 weight file that does not hold is refused, naming the file, the tensor, the expected and the "
    "actual value",
    "[vgg16]") {
  TempDir dir("vgg");
  const auto dict = random_vgg16_weights();
  VGG16Features vgg;
  vgg->load_weights(write_vgg16_weights(dir.path / "vgg.safetensors", dict));
  const auto refused = [&](const std::string& name, const std::map<std::string, torch::Tensor>& d,
                           const std::vector<std::string>& parts) {
    const auto path = write_vgg16_weights(dir.path / name, d);
    INFO(name);
    try {
      vgg->load_weights(path);
      FAIL("loaded");
    } catch (const std::runtime_error& e) {
      for (const auto& part : parts) CHECK_THAT(e.what(), Catch::Contains(part));
      CHECK_THAT(e.what(), Catch::Contains("VGG16 weight file '" + path.string() + "'"));
    }
  };
  auto d = dict;
  d.erase("features.21.bias");
  refused("missing.safetensors", d, {"lacks the tensor 'features.21.bias' (conv4_3 bias, F32 [512])"});
  d = dict;
  d["features.0.weight"] = torch::zeros({64, 3, 5, 5});
  refused("shape.safetensors", d,
          {"tensor 'features.0.weight' (conv1_1 weight) has shape [64,3,5,5] and dtype F32, "
           "expected [64,3,3,3] and F32"});
  d = dict;
  d["features.12.bias"] = dict.at("features.12.bias").to(torch::kFloat64);
  refused("dtype.safetensors", d,
          {"tensor 'features.12.bias' (conv3_2 bias) has shape [256] and dtype F64, "
           "expected [256] and F32"});
  d = dict;
  d["features.28.bias"] = torch::zeros({256});
  refused("conv5.safetensors", d, {"'features.28.bias' (conv5_3 bias) has shape [256]", "expected [512]"});
  d = dict;
  d["classifier.0.weight"] = torch::zeros({2, 2});
  refused("unknown.safetensors", d, {"holds the tensor 'classifier.0.weight', which is none of torchvision's VGG16"});
  d = dict;
  d["0.bias"] = dict.at("features.0.bias");  // the former file's unprefixed names
  refused("unprefixed.safetensors", d, {"holds the tensor '0.bias'"});
  d = dict;
  d["features.7.bias"] = d.at("features.7.bias").clone().index_put_({3}, std::numeric_limits<float>::quiet_NaN());
  refused("nan.safetensors", d, {"tensor 'features.7.bias' (conv2_2 bias) contains NaN or Inf"});
  // A torch pickle (the former format) or any other file that is not safetensors: the command that writes one.
  c10::Dict<std::string, torch::Tensor> pickled;
  for (const auto& kv : dict) pickled.insert(kv.first, kv.second);
  const auto bytes = torch::pickle_save(c10::IValue(pickled));
  std::ofstream(dir.path / "vgg.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK_THROWS_WITH(vgg->load_weights(dir.path / "vgg.pt"),
                    Catch::Contains("is not a safetensors file of torchvision's VGG16 features (write one with "
                                    "python3 scripts/fetch-vgg16.py)"));
  CHECK_THROWS_WITH(vgg->load_weights(dir.path / "none.safetensors"), Catch::Contains("cannot open VGG16 weight file"));
  // Nothing of a refused file was copied.
  for (const auto& p : vgg->named_parameters()) CHECK(torch::equal(p.value(), dict.at("features." + p.key())));
}

TEST_CASE("Every file of the VGG16 weight fuzz corpus loads or is refused with a message", "[vgg16][faults]") {
  // fuzz/corpus/trainer_vgg16_weights/ (fuzz/trainer_vgg16_weights.cpp): first byte % 14 = the convolutions
  // needed, the rest a weight file. seed-conv* load; seed-refused-* are refused, naming the file.
  const fs::path corpus = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_vgg16_weights";
  REQUIRE(fs::is_directory(corpus));
  int seeds = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string file = entry.path().filename().string(), data = read_text(entry.path());
    REQUIRE_FALSE(data.empty());
    std::string error;
    try {
      const size_t needed = static_cast<unsigned char>(data[0]) % 14;
      const size_t loaded = parse_vgg16_weights(data.substr(1), "corpus", needed).size();  // throws when refused
      CHECK(loaded == 2 * needed);
    } catch (const std::runtime_error& e) {
      error = e.what();
      CHECK_THAT(error, Catch::Contains("VGG16 weight file 'corpus'"));
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
  CHECK(seeds == 5);
}

TEST_CASE("VGG16 activations of real images, for torchvision to compare (ctest trainer_vgg16_torchvision)",
          "[.vgg16_torchvision]") {
  // tests/vgg16_torchvision/run.sh: scripts/fetch-vgg16.py wrote the weights; check.py compares what this
  // writes (the images as the network sees them, in [-1, 1], and relu3_1, relu4_1, relu4_3) with torchvision's
  // vgg16().features loaded from the same file.
  const char* weights = std::getenv("PATCHGCL_VGG16_WEIGHTS");
  const char* data = std::getenv("PATCHGCL_VGG16_DATA");
  const char* out = std::getenv("PATCHGCL_VGG16_OUT");
  REQUIRE((weights && data && out));
  std::vector<torch::Tensor> images;
  for (const char* side : {"trainA", "trainB"}) {
    for (const auto& file : list_images(fs::path(data) / side)) {
      std::string error;
      const Image image = read_image(file, &error);
      INFO(file.string() << ": " << error);
      REQUIRE_FALSE(image.empty());
      images.push_back(to_tensor(resize(image, 256, 256)));  // the paper's training size
    }
  }
  REQUIRE(images.size() >= 2);
  const auto x = torch::stack(images);
  VGG16Features vgg;
  vgg->load_weights(weights);
  vgg->eval();
  torch::NoGradGuard no_grad;
  const auto feats = vgg->forward(x, VGG16FeaturesImpl::paper_layers());
  REQUIRE(feats.size() == 3);
  patchgcl::io::write_safetensors(out,
                                  {{"images", x}, {"relu3_1", feats[0]}, {"relu4_1", feats[1]}, {"relu4_3", feats[2]}});
}

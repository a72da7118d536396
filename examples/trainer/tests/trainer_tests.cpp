// Tests of the example trainer: data, networks, training, checkpoints, translate, evaluate, VGG16 loading.
#define CATCH_CONFIG_MAIN
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include "commands.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace trainer;
namespace fs = std::filesystem;

namespace {

/// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("patchgcl_trainer_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// The smallest configuration that still exercises every part of a CUT step.
TrainConfig tiny_config(LossKind loss = LossKind::kGraph) {
  TrainConfig c;
  c.data.synthetic_size = c.data.load_size = c.data.crop_size = 32;
  c.data.synthetic_count = 16;
  c.loss = loss;
  c.ngf = 8;
  c.n_blocks = 2;
  c.ndf = 8;
  c.num_patches = 64;
  c.steps = 40;
  c.seed = 7;
  c.data.seed = c.seed;
  return c;
}

bool same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

void write_garbage(const fs::path& path) { std::ofstream(path) << "this is not an image"; }

}  // namespace

TEST_CASE("Folder datasets load, skip unreadable images and augment reproducibly", "[data]") {
  torch::set_num_threads(1);
  TempDir dir("data");
  write_synthetic(dir.path, 6, 40, 3);
  write_garbage(dir.path / "trainA" / "broken.jpg");
  DataOptions o;
  o.root = dir.path.string();
  o.load_size = 40;
  o.crop_size = 32;
  o.seed = 11;
  UnpairedDataset data(o);
  CHECK(data.skipped() == 1);
  CHECK(data.domain_A().size() == 6);
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
      auto a = d.batch(step, 1).real_A[0];
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

TEST_CASE("A few training steps lower the contrastive loss on a tiny problem", "[train]") {
  torch::set_num_threads(1);
  auto loss = GENERATE(LossKind::kGraph, LossKind::kPatchNCE, LossKind::kPUT);
  auto config = tiny_config(loss);
  config.steps = 30;
  UnpairedDataset data(config.data);
  Trainer t(config, torch::kCPU);
  double first = 0, last = 0;
  for (int64_t s = 0; s < config.steps; ++s) {
    auto l = t.train_step(data.batch(s, 2));
    REQUIRE(std::isfinite(l.G));
    if (s < 5) first += l.NCE + l.NCE_Y;
    if (s >= config.steps - 5) last += l.NCE + l.NCE_Y;
  }
  INFO("loss " << to_string(loss) << ": first 5 steps " << first / 5 << ", last 5 steps " << last / 5);
  CHECK(last < 0.9 * first);
}

TEST_CASE("Patch sampling is clamped to the smallest feature map, as CUT's min(num_patches, H*W)", "[train]") {
  auto config = tiny_config(LossKind::kPatchNCE);
  config.data.synthetic_size = 24;  // bottleneck 6x6 = 36 locations
  config.num_patches = 256;
  Trainer t(config, torch::kCPU);
  CHECK(t.num_patches() == 36);
  UnpairedDataset data(config.data);
  CHECK(std::isfinite(t.train_step(data.batch(0, 1)).G));
}

TEST_CASE("Checkpoints round-trip and resume continues bit-for-bit", "[checkpoint]") {
  torch::set_num_threads(1);
  TempDir dir("ckpt");
  auto config = tiny_config(LossKind::kGraph);
  config.steps = 6;
  UnpairedDataset data(config.data);

  Trainer straight(config, torch::kCPU);
  for (int64_t s = 0; s < 6; ++s) straight.train_step(data.batch(s, 1));

  {
    Trainer first_half(config, torch::kCPU);
    for (int64_t s = 0; s < 3; ++s) first_half.train_step(data.batch(s, 1));
    first_half.save(dir.path / "ckpt.pt");
    CHECK_FALSE(fs::exists(dir.path / "ckpt.pt.tmp"));
    Trainer reloaded(config, torch::kCPU);
    reloaded.load(dir.path / "ckpt.pt");
    CHECK(reloaded.step() == 3);
    CHECK(same_parameters(*reloaded.G, *first_half.G));
    CHECK(same_parameters(*reloaded.F.module, *first_half.F.module));
  }
  torch::manual_seed(12345);  // resuming must not depend on the process's RNG history
  Trainer resumed(config, torch::kCPU);
  resumed.load(dir.path / "ckpt.pt");
  while (resumed.step() < 6) resumed.train_step(data.batch(resumed.step(), 1));
  CHECK(same_parameters(*resumed.G, *straight.G));
  CHECK(same_parameters(*resumed.D, *straight.D));
  CHECK(same_parameters(*resumed.F.module, *straight.F.module));

  SECTION("a checkpoint of another configuration is refused") {
    auto other = config;
    other.ngf = 16;
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(t.load(dir.path / "ckpt.pt"), Catch::Contains("ngf: 8 (checkpoint) vs 16"));
  }
}

TEST_CASE("train writes the run folder and resumes it exactly", "[train]") {
  torch::set_num_threads(1);
  TempDir dir("run");
  auto config = tiny_config(LossKind::kPatchNCE);
  config.steps = 8;
  RunOptions run;
  run.quiet = true;
  run.log_every = 2;
  run.sample_every = 4;
  run.checkpoint_every = 4;
  run.run_dir = dir.path / "straight";
  auto straight = train(config, run, torch::kCPU);
  CHECK(report::read_log(run.run_dir / "log.jsonl").size() == 4);
  CHECK(fs::exists(run.run_dir / "samples" / "step_000008.png"));
  std::ifstream html(run.run_dir / "index.html");
  std::string text((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  CHECK(text.find("<svg") != std::string::npos);
  CHECK(text.find("samples/step_000008.png") != std::string::npos);
  CHECK_THROWS_WITH(train(config, run, torch::kCPU), Catch::Contains("--resume"));

  // Interrupted after the checkpoint at step 4 (steps 5-6 logged, then lost), then resumed.
  run.run_dir = dir.path / "interrupted";
  {
    auto cut = config;
    Trainer t(cut, torch::kCPU);
    UnpairedDataset data(cut.data);
    fs::create_directories(run.run_dir);
    for (int64_t s = 0; s < 4; ++s) t.train_step(data.batch(s, cut.batch_size));
    t.save(run.run_dir / "ckpt.pt");
    std::ofstream(run.run_dir / "log.jsonl") << "{\"step\":2}\n{\"step\":4}\n{\"step\":6}\n";
  }
  run.resume = true;
  auto resumed = train(config, run, torch::kCPU);
  CHECK(same_parameters(*resumed->G, *straight->G));
  auto log = report::read_log(run.run_dir / "log.jsonl");
  REQUIRE(log.size() == 4);
  CHECK(log[2]["step"] == 6);
  CHECK(log[2].count("loss_NCE") == 1);  // the stale step-6 line was replaced
}

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
  t.save(dir.path / "ckpt.pt");
  auto loaded = load_checkpoint(dir.path / "ckpt.pt", torch::kCPU);
  int skipped = 0;
  CHECK(translate(*loaded, dir.path / "in", dir.path / "out", 0, &skipped) == 2);
  CHECK(skipped == 1);
  auto one = read_image(dir.path / "out" / "one.png");
  CHECK(one.width == 32);  // 30 rounded to the generator's stride of 4
  CHECK(read_image(dir.path / "out" / "two.png").width == 64);
  // The loaded generator is the saved one.
  auto x = to_tensor(synthetic::sample(synthetic::Split::kTest, Domain::kA, 2, 32, 0)).unsqueeze(0);
  CHECK(torch::equal(loaded->translate(x), t.translate(x)));
  CHECK_THROWS_WITH(translate(*loaded, dir.path / "nope", dir.path / "out", 0), Catch::Contains("does not exist"));
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
                  .view({1, 3, 1, 1}) * 2 - 1;
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

TEST_CASE("VGG16 weights load from a pickled tensor dict", "[vgg16]") {
  TempDir dir("vgg");
  torch::manual_seed(3);
  c10::Dict<std::string, torch::Tensor> dict;
  VGG16Features reference;
  for (const auto& p : reference->named_parameters()) dict.insert("features." + p.key(), torch::randn_like(p.value()));
  auto write = [&](const c10::Dict<std::string, torch::Tensor>& d, const fs::path& path) {
    auto bytes = torch::pickle_save(c10::IValue(d));
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  write(dict, dir.path / "vgg.pt");
  VGG16Features vgg;
  vgg->load_weights(dir.path / "vgg.pt");
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
      return torch::relu(torch::conv2d(in, dict.at("features." + k + ".weight"), dict.at("features." + k + ".bias"), 1, 1));
    };
    h = torch::max_pool2d(conv(conv(h, 0), 2), 2, 2);
    h = torch::max_pool2d(conv(conv(h, 5), 7), 2, 2);
    h = conv(h, 10);
    CHECK(torch::allclose(vgg->forward(x, {11})[0], h, 1e-4, 1e-5));
  }

  SECTION("a missing or mis-shaped tensor is named") {
    auto missing = dict.copy();
    missing.erase("features.21.bias");
    write(missing, dir.path / "missing.pt");
    CHECK_THROWS_WITH(VGG16Features()->load_weights(dir.path / "missing.pt"), Catch::Contains("21.bias"));
    auto wrong = dict.copy();
    wrong.insert_or_assign("features.0.weight", torch::zeros({64, 3, 5, 5}));
    write(wrong, dir.path / "wrong.pt");
    CHECK_THROWS_WITH(VGG16Features()->load_weights(dir.path / "wrong.pt"), Catch::Contains("[64,3,5,5]"));
    CHECK_THROWS_WITH(VGG16Features()->load_weights(dir.path / "none.pt"), Catch::Contains("cannot open"));
  }
}

TEST_CASE("Configurations round-trip through their text form", "[checkpoint]") {
  auto c = tiny_config(LossKind::kPUT);
  c.features = FeatureKind::kVGG16;
  c.lr = 1.5e-4;
  auto back = TrainConfig::deserialize(c.serialize());
  CHECK(back.differences(c).empty());
  CHECK(back.lambda() == Approx(0.1));
  CHECK(back.loss == LossKind::kPUT);
  CHECK(c.lr_factor(0) == 1.0);
  CHECK(c.lr_factor(c.steps - 1) < 0.1);
  auto r = report::parse_record("{\"step\":12,\"loss_D\":0.25,\"name\":\"x\"}");
  CHECK(r["step"] == 12);
  CHECK(r["loss_D"] == Approx(0.25));
  CHECK(r.count("name") == 0);
}

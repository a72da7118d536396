// Tests of training and checkpoints: the step lowers the loss, checkpoints round-trip and resume
// bit-for-bit, `train` writes a well-formed run folder, `translate` reads a checkpoint back.
#include "trainer/tests/helpers.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

using namespace trainer_tests;

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
    checkpoint::save(first_half, dir.path / "ckpt.safetensors");
    CHECK_FALSE(fs::exists(dir.path / "ckpt.safetensors.tmp"));
    Trainer reloaded(config, torch::kCPU);
    checkpoint::restore(reloaded, dir.path / "ckpt.safetensors");
    CHECK(reloaded.step() == 3);
    CHECK(same_parameters(*reloaded.G, *first_half.G));
    CHECK(same_parameters(*reloaded.F.module, *first_half.F.module));
  }
  torch::manual_seed(12345);  // resuming must not depend on the process's RNG history
  Trainer resumed(config, torch::kCPU);
  checkpoint::restore(resumed, dir.path / "ckpt.safetensors");
  while (resumed.step() < 6) resumed.train_step(data.batch(resumed.step(), 1));
  CHECK(same_parameters(*resumed.G, *straight.G));
  CHECK(same_parameters(*resumed.D, *straight.D));
  CHECK(same_parameters(*resumed.F.module, *straight.F.module));

  SECTION("a checkpoint of other channels is refused") {
    auto other = config;
    other.ngf = 16;
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "ckpt.safetensors"), Catch::Contains("ngf: 8 (checkpoint) vs 16"));
  }
  SECTION("a checkpoint of another loss is refused") {
    auto other = config;
    other.loss = LossKind::kPatchNCE;  // other heads: a shape mismatch if the check were missing
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "ckpt.safetensors"), Catch::Contains("loss: graph (checkpoint) vs patchnce"));
  }
  SECTION("a truncated checkpoint is named, with the field that shows it") {
    write_truncated(dir.path / "ckpt.safetensors", dir.path / "torn.safetensors", fs::file_size(dir.path / "ckpt.safetensors") / 2);
    Trainer t(config, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "torn.safetensors"), 
                      Catch::Contains("torn.safetensors' is damaged (cut short, or changed after it was written) or not a "
                                      "checkpoint (a safetensors file): field 'data_offsets': bytes ["));
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
  // The report as a browser reads it: well-formed, one chart per curve, the latest grid first.
  const std::string html = read_text(run.run_dir / "index.html");
  std::map<std::string, int> elements;
  CHECK(markup_problems(html, &elements) == "");
  CHECK(elements["svg"] == 6);  // one per logged loss (loss_D, loss_G_GAN, loss_NCE, loss_NCE_Y, loss_G) and lr
  CHECK(elements["polyline"] == 6);
  CHECK(elements["img"] == 3);  // steps 0, 4 and 8
  CHECK_THAT(html, Catch::Contains("<figure><img src='samples/step_000008.png'"));
  CHECK(html.find("step_000008.png") < html.find("step_000004.png"));
  // config.txt shows numbers as they were written (shortest round-trip), not 0.00020000000000000001.
  const std::string config_txt = read_text(run.run_dir / "config.txt");
  // Only the options of the embedded dataset's mode (min_zoom is single-image, load_size folders').
  CHECK_THAT(config_txt, Catch::Contains("\nlr=0.0002\n") && Catch::Contains("\nbeta2=0.999\n") &&
                             Catch::Contains("\nsynthetic_size=32\n") && !Catch::Contains("min_zoom=") &&
                             !Catch::Contains("load_size="));
  CHECK(parse_config_text(config_txt, "config.txt").differences(config).empty());
  CHECK_THROWS_WITH(train(config, run, torch::kCPU), Catch::Contains("--resume"));

  // Interrupted after the checkpoint at step 4 (steps 5-6 logged, then lost), then resumed.
  run.run_dir = dir.path / "interrupted";
  {
    auto cut = config;
    Trainer t(cut, torch::kCPU);
    UnpairedDataset data(cut.data);
    fs::create_directories(run.run_dir);
    for (int64_t s = 0; s < 4; ++s) t.train_step(data.batch(s, cut.batch_size));
    checkpoint::save(t, run.run_dir / "ckpt.safetensors");
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

TEST_CASE("--keep-checkpoints keeps at most N checkpoints, evenly spaced over the run", "[checkpoint]") {
  TempDir dir("kept");
  SECTION("the rule, step by step: multiples of every x 2^k, at most N, the same after a restart") {
    CHECK(checkpoint::kept_stride(6, 1, 3) == 2);
    CHECK(checkpoint::kept_stride(7, 1, 3) == 2);
    CHECK(checkpoint::kept_stride(8, 1, 3) == 4);
    CHECK(checkpoint::kept_stride(600, 200, 3) == 200);
    CHECK(checkpoint::kept_stride(800, 200, 3) == 400);
    const auto ckpt = dir.path / "ckpt.safetensors";
    std::ofstream(ckpt) << "stand-in";
    auto kept = [&] {
      std::vector<int64_t> steps;
      for (const auto& [step, file] : checkpoint::list_kept(dir.path)) steps.push_back(step);
      return steps;
    };
    const std::map<int64_t, std::vector<int64_t>> expected = {
        {1, {1}}, {2, {1, 2}}, {3, {1, 2, 3}}, {4, {2, 4}}, {5, {2, 4}}, {6, {2, 4, 6}},
        {7, {2, 4, 6}}, {8, {4, 8}}, {11, {4, 8}}, {12, {4, 8, 12}}, {15, {4, 8, 12}}, {16, {8, 16}}};
    for (int64_t step = 1; step <= 16; ++step) {
      checkpoint::keep_checkpoint(dir.path, ckpt, step, 1, 3);
      INFO("step " << step);
      CHECK(kept().size() <= 3);
      if (expected.count(step)) CHECK(kept() == expected.at(step));
    }
    // A restart at step 16 with another bound applies the rule at once; 0 keeps and removes nothing.
    checkpoint::keep_checkpoint(dir.path, ckpt, 16, 1, 1);
    CHECK(kept() == std::vector<int64_t>{16});
    checkpoint::keep_checkpoint(dir.path, ckpt, 17, 1, 0);
    CHECK(kept() == std::vector<int64_t>{16});
    // Other files in checkpoints/ are left alone.
    std::ofstream(checkpoint::kept_folder(dir.path) / "notes.txt") << "mine";
    checkpoint::keep_checkpoint(dir.path, ckpt, 32, 1, 1);
    CHECK(kept() == std::vector<int64_t>{32});
    CHECK(fs::exists(checkpoint::kept_folder(dir.path) / "notes.txt"));
  }
  SECTION("train keeps hard links of ckpt.safetensors at the kept steps, each the checkpoint of its step") {
    torch::set_num_threads(1);
    auto config = tiny_config();
    config.steps = 6;
    RunOptions run;
    run.quiet = true;
    run.log_every = run.sample_every = 6;
    run.checkpoint_every = 2;
    run.keep_checkpoints = 2;
    run.run_dir = dir.path / "run";
    train(config, run, torch::kCPU);
    // step 6, every 2, at most 2: s = 4 -> step 4 only (step 6 is ckpt.safetensors).
    const auto kept = checkpoint::list_kept(run.run_dir);
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].first == 4);
    CHECK(kept[0].second.filename() == "step_00000004.safetensors");
    CHECK(evaluation::checkpoint_step(kept[0].second) == 4);
    CHECK(evaluation::run_checkpoints(run.run_dir).size() == 2);  // step 4 and ckpt.safetensors (step 6)
    CHECK(evaluation::run_checkpoints(run.run_dir).back().second == run.run_dir / "ckpt.safetensors");
    run.keep_checkpoints = -1;
    run.run_dir = dir.path / "refused";
    CHECK_THROWS_WITH(train(config, run, torch::kCPU),
                      Catch::Contains("--keep-checkpoints must be at least 0") && Catch::Contains("(got -1)"));
  }
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

TEST_CASE("Configurations round-trip through their text form", "[checkpoint]") {
  auto c = tiny_config(LossKind::kPUT);
  c.features = FeatureKind::kVGG16;
  c.lr = 1.5e-4;
  auto back = parse_config_text(c.serialize(), "configuration");
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

TEST_CASE("A loss curve is a complete SVG: every element closed, labels and points all there", "[report]") {
  std::vector<report::Record> records;
  for (int step = 2; step <= 40; step += 2)
    records.push_back({{"step", static_cast<double>(step)}, {"loss_D", 0.25 + 1.0 / step}, {"lr", 2e-4}});
  for (const std::string key : {"loss_D", "lr"}) {
    INFO(key);
    const std::string svg = report::svg_curve(records, key);
    std::map<std::string, int> elements;
    CHECK(markup_problems(svg, &elements) == "");
    CHECK(elements["svg"] == 1);
    CHECK(elements["polyline"] == 1);
    CHECK(elements["text"] == 4);  // the name, the top and bottom values, the last step
    CHECK_THAT(svg, Catch::StartsWith("<svg xmlns='http://www.w3.org/2000/svg' width='320' height='160'>") &&
                        Catch::EndsWith("text-anchor='end'>step 40</text></svg>"));
    const auto points = svg.substr(svg.find("points='") + 8, svg.find("'/>", svg.find("points='")) - svg.find("points='") - 8);
    CHECK(std::count(points.begin(), points.end(), ',') == 20);
  }
  // No data, or a single point: a frame with the name, still well-formed.
  CHECK(markup_problems(report::svg_curve({}, "loss_D")) == "");
  CHECK(markup_problems(report::svg_curve({records[0]}, "loss_D")) == "");
  SECTION("the checker finds what a browser trips over") {
    CHECK(markup_problems("<svg><text font-family='sans-s</svg>") != "");  // the old 200-byte buffer's cut
    CHECK(markup_problems("<svg><text>a</svg>") != "");
    CHECK(markup_problems("<svg><rect/>") != "");
    CHECK(markup_problems("<p>a<br><img src='x'></p>") == "");
  }
}

TEST_CASE("to_channels: RGB to grayscale is BT.601 luma, grayscale to RGB repeats, other counts are refused",
          "[data][channels]") {
  const auto rgb = torch::tensor({0.5f, -1.0f, 1.0f}).view({3, 1, 1});
  const auto gray = to_channels(rgb, 1);
  REQUIRE(gray.sizes() == torch::IntArrayRef({1, 1, 1}));
  CHECK(gray.item<float>() == Approx(0.299 * 0.5 - 0.587 + 0.114).margin(1e-6));
  const auto batch = torch::rand({2, 3, 4, 5}) * 2 - 1;
  const auto batch_gray = to_channels(batch, 1);
  REQUIRE(batch_gray.sizes() == torch::IntArrayRef({2, 1, 4, 5}));
  CHECK(torch::allclose(batch_gray[1][0], 0.299 * batch[1][0] + 0.587 * batch[1][1] + 0.114 * batch[1][2], 1e-6, 1e-6));
  const auto repeated = to_channels(batch_gray, 3);
  REQUIRE(repeated.sizes() == torch::IntArrayRef({2, 3, 4, 5}));
  CHECK(torch::equal(repeated.select(1, 0), repeated.select(1, 2)));  // copies of the gray channel
  CHECK(torch::allclose(to_channels(repeated, 1), batch_gray, 1e-6, 1e-6));  // a gray file read as RGB: its own values
  CHECK(to_channels(batch, 3).data_ptr() == batch.data_ptr());
  CHECK_THROWS_WITH(to_channels(torch::zeros({2, 4, 4}), 3), Catch::Contains("1 (grayscale) and 3 (RGB)") &&
                                                                   Catch::Contains("got 2 -> 3"));
  CHECK_THROWS_WITH(to_channels(rgb, 4), Catch::Contains("got 3 -> 4"));
  // A one-channel tensor is written as gray RGB.
  const Image written = from_tensor(torch::full({1, 1, 2, 2}, 0.0f));
  REQUIRE(written.pixels.size() == 12);
  CHECK(std::all_of(written.pixels.begin(), written.pixels.end(), [](uint8_t v) { return v == 128; }));
}

TEST_CASE("Grayscale in, RGB out and RGB in, grayscale out: train, checkpoint, translate", "[train][channels]") {
  torch::set_num_threads(1);
  const auto channels = GENERATE(std::make_pair(int64_t{1}, int64_t{3}), std::make_pair(int64_t{3}, int64_t{1}));
  INFO("--input-nc " << channels.first << " --output-nc " << channels.second);
  TempDir dir("channels");
  auto config = tiny_config(LossKind::kPatchNCE);
  config.input_nc = channels.first;
  config.output_nc = channels.second;
  config.steps = 3;
  UnpairedDataset data(config.data);
  Trainer t(config, torch::kCPU);
  CHECK(t.G->options.input_nc() == channels.first);
  CHECK(t.G->options.output_nc() == channels.second);
  CHECK(t.D->options.input_nc() == channels.second);
  for (int64_t s = 0; s < config.steps; ++s) REQUIRE(std::isfinite(t.train_step(data.batch(s, 2)).G));
  checkpoint::save(t, dir.path / "ckpt.safetensors");
  auto model = checkpoint::load_model(dir.path / "ckpt.safetensors", torch::kCPU);
  CHECK(model->config().input_nc == channels.first);
  CHECK(model->config().output_nc == channels.second);
  CHECK(same_parameters(*model->G, *t.G));
  const auto x = to_tensor(data.domain_A()[0]).unsqueeze(0);
  const auto y = model->translate(x);
  CHECK(y.size(1) == channels.second);
  CHECK(y.size(2) == x.size(2));
  // RGB and grayscale inputs are converted to the generator's channels, as the training data is.
  CHECK(torch::allclose(model->translate(to_channels(x, channels.first)), y, 1e-5, 1e-5));
  CHECK_THROWS_WITH(model->translate(torch::zeros({1, 2, 24, 24})),
                    Catch::Contains("[B, 1 or 3, H, W]") && Catch::Contains("got 4 dims with 2 channels"));
  // The channels are part of the configuration: resuming with others is refused by name.
  auto other = config;
  std::swap(other.input_nc, other.output_nc);
  Trainer mismatched(other, torch::kCPU);
  CHECK_THROWS_WITH(checkpoint::restore(mismatched, dir.path / "ckpt.safetensors"),
                    Catch::Contains(fmt::format("input_nc: {} (checkpoint) vs {} (command line)", channels.first,
                                                channels.second)));
}

TEST_CASE("Flip equivariance flips half of the steps, drawn from (seed, step), and trains", "[train][modes]") {
  torch::set_num_threads(1);
  auto config = tiny_config(LossKind::kPatchNCE);
  config.flip_equivariance = true;
  config.nce_idt = false;
  config.steps = 2;
  Trainer t(config, torch::kCPU);
  int flipped = 0;
  for (int64_t s = 0; s < 200; ++s) flipped += t.flips_at(s);
  CHECK(flipped > 70);
  CHECK(flipped < 130);
  Trainer same(config, torch::kCPU);
  for (int64_t s = 0; s < 50; ++s) CHECK(same.flips_at(s) == t.flips_at(s));
  UnpairedDataset data(config.data);
  for (int64_t s = 0; s < config.steps; ++s) REQUIRE(std::isfinite(t.train_step(data.batch(s, 2)).G));
  // The option is part of the checkpoint configuration.
  auto c = parse_config_text(config.serialize(), "test");
  CHECK(c.flip_equivariance);
  CHECK(config.serialize().find("flip_equivariance=1\n") != std::string::npos);
}

TEST_CASE("Tiles: origins on the downsampling grid, ramps that sum to 1 over an overlap", "[translate][tile]") {
  CHECK(tile_origins(96, 32, 8) == std::vector<int64_t>{0, 24, 48, 64});
  CHECK(tile_origins(32, 32, 8) == std::vector<int64_t>{0});
  CHECK(tile_origins(20, 32, 8) == std::vector<int64_t>{0});
  const auto left = tile_ramp(0, 32, 96, 8), right = tile_ramp(24, 32, 96, 8);
  CHECK(left[0].item<float>() == 1.0f);                           // the image's border: no ramp
  CHECK(left[31].item<float>() == Approx(0.5 / 8));
  CHECK(torch::allclose(left.slice(0, 24, 32) + right.slice(0, 0, 8), torch::ones({8})));
  CHECK_THROWS_WITH(check_tile_options({10, 0, 4}), Catch::Contains("--tile must be 0 (the whole image) or a multiple of 4 "
                                                                    "of at least 16 (got 10)"));
  CHECK_THROWS_WITH(check_tile_options({32, 16, 4}), Catch::Contains("--tile-overlap must be a multiple of 4 in [0, --tile / 2) (got 16)"));
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
        img.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] = static_cast<uint8_t>(std::clamp(
            128 + static_cast<int>(80 * std::sin(0.45 * x + 0.3 * y + c)) + noise(rng), 0, 255));
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
                                       F::AvgPool2dFuncOptions(5).stride(1)) * 1.5);
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
      INFO("tile " << tile << ": max " << max_inside << ", mean " << means.back() << " levels; the whole translation's "
                   "standard deviation: " << spread);
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

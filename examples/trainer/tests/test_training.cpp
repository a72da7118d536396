// Tests of training: the step lowers the loss, patch sampling follows CUT, `train` writes a
// well-formed run folder and report and resumes it exactly, other channel counts and flip
// equivariance train. test_checkpoints.cpp has the checkpoints, test_translate.cpp `translate`.
#include "trainer/tests/helpers.hpp"

#include <algorithm>
#include <cmath>
#include <map>

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
    const auto points =
        svg.substr(svg.find("points='") + 8, svg.find("'/>", svg.find("points='")) - svg.find("points='") - 8);
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
  CHECK(torch::equal(repeated.select(1, 0), repeated.select(1, 2)));         // copies of the gray channel
  CHECK(torch::allclose(to_channels(repeated, 1), batch_gray, 1e-6, 1e-6));  // a gray file read as RGB: its own values
  CHECK(to_channels(batch, 3).data_ptr() == batch.data_ptr());
  CHECK_THROWS_WITH(to_channels(torch::zeros({2, 4, 4}), 3),
                    Catch::Contains("1 (grayscale) and 3 (RGB)") && Catch::Contains("got 2 -> 3"));
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
  CHECK_THROWS_WITH(
      checkpoint::restore(mismatched, dir.path / "ckpt.safetensors"),
      Catch::Contains(fmt::format("input_nc: {} (checkpoint) vs {} (command line)", channels.first, channels.second)));
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

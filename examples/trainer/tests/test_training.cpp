// Tests of training and checkpoints: the step lowers the loss, checkpoints round-trip and resume
// bit-for-bit, `train` writes a well-formed run folder, `translate` reads a checkpoint back.
#include "trainer/tests/helpers.hpp"

#include <algorithm>
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
    checkpoint::save(first_half, dir.path / "ckpt.pt");
    CHECK_FALSE(fs::exists(dir.path / "ckpt.pt.tmp"));
    Trainer reloaded(config, torch::kCPU);
    checkpoint::restore(reloaded, dir.path / "ckpt.pt");
    CHECK(reloaded.step() == 3);
    CHECK(same_parameters(*reloaded.G, *first_half.G));
    CHECK(same_parameters(*reloaded.F.module, *first_half.F.module));
  }
  torch::manual_seed(12345);  // resuming must not depend on the process's RNG history
  Trainer resumed(config, torch::kCPU);
  checkpoint::restore(resumed, dir.path / "ckpt.pt");
  while (resumed.step() < 6) resumed.train_step(data.batch(resumed.step(), 1));
  CHECK(same_parameters(*resumed.G, *straight.G));
  CHECK(same_parameters(*resumed.D, *straight.D));
  CHECK(same_parameters(*resumed.F.module, *straight.F.module));

  SECTION("a checkpoint of other channels is refused") {
    auto other = config;
    other.ngf = 16;
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "ckpt.pt"), Catch::Contains("ngf: 8 (checkpoint) vs 16"));
  }
  SECTION("a checkpoint of another loss is refused") {
    auto other = config;
    other.loss = LossKind::kPatchNCE;  // other heads: a shape mismatch if the check were missing
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "ckpt.pt"), Catch::Contains("loss: graph (checkpoint) vs patchnce"));
  }
  SECTION("a truncated checkpoint is named, not a zip error") {
    write_truncated(dir.path / "ckpt.pt", dir.path / "torn.pt", fs::file_size(dir.path / "ckpt.pt") / 2);
    Trainer t(config, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "torn.pt"), Catch::Contains("torn.pt' is truncated or has trailing bytes: its header declares "));
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
    checkpoint::save(t, run.run_dir / "ckpt.pt");
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
    const auto ckpt = dir.path / "ckpt.pt";
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
  SECTION("train keeps hard links of ckpt.pt at the kept steps, each the checkpoint of its step") {
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
    // step 6, every 2, at most 2: s = 4 -> step 4 only (step 6 is ckpt.pt).
    const auto kept = checkpoint::list_kept(run.run_dir);
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].first == 4);
    CHECK(kept[0].second.filename() == "step_00000004.pt");
    CHECK(evaluation::checkpoint_step(kept[0].second) == 4);
    CHECK(evaluation::run_checkpoints(run.run_dir).size() == 2);  // step 4 and ckpt.pt (step 6)
    CHECK(evaluation::run_checkpoints(run.run_dir).back().second == run.run_dir / "ckpt.pt");
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
  checkpoint::save(t, dir.path / "ckpt.pt");
  auto loaded = checkpoint::load_model(dir.path / "ckpt.pt", torch::kCPU);
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

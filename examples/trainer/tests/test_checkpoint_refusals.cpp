// Checkpoints from outside, continued: the configuration read with the command line's rules, the
// fuzz corpus, and translate / --resume on damaged and crafted files.
#include "trainer/tests/checkpoint_helpers.hpp"

#include <sstream>

using namespace trainer_tests;

TEST_CASE("A checkpoint's configuration is read with the command line's rules", "[checkpoint][faults]") {
  TrainConfig c;
  c.data.synthetic_size = c.data.load_size = c.data.crop_size = 32;
  c.ngf = 8;
  c.seed = c.data.seed = 5;
  const std::string text = c.serialize();
  CHECK(parse_config_text(text, "checkpoint 'x'").serialize() == text);
  auto with = [&](const std::string& key, const std::string& value) {
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      out += (line.rfind(key + "=", 0) == 0 ? key + "=" + value : line) + "\n";
    return out;
  };
  // Sizes and values that would crash or allocate what they ask for.
  CHECK_THROWS_WITH(parse_config_text(with("ngf", "abc"), "checkpoint 'x'"),
                    "checkpoint 'x': field 'ngf' must be an integer (got 'abc')");
  CHECK_THROWS_WITH(parse_config_text(with("ngf", "8x"), "checkpoint 'x'"), Catch::Contains("must be an integer"));
  CHECK_THROWS_WITH(parse_config_text(with("batch_size", "99999999999"), "checkpoint 'x'"),
                    Catch::Contains("field 'batch_size' must be an integer in [-2147483648, 2147483647]"));
  CHECK_THROWS_WITH(parse_config_text(with("ngf", "0"), "checkpoint 'x'"),
                    "checkpoint 'x' holds a configuration the command line refuses: --ngf must be at least 1 (got 0)");
  CHECK_THROWS_WITH(parse_config_text(with("lr", "nan"), "checkpoint 'x'"),
                    Catch::Contains("--lr must be a finite number > 0 (got nan)"));
  CHECK_THROWS_WITH(parse_config_text(with("loss", "triplet"), "checkpoint 'x'"),
                    "checkpoint 'x': field 'loss' must be graph, patchnce or put (got 'triplet')");
  CHECK_THROWS_WITH(parse_config_text(with("flip", "2"), "checkpoint 'x'"),
                    Catch::Contains("field 'flip' must be 0 or 1"));
  CHECK_THROWS_WITH(parse_config_text(text + "ngf=8\n", "checkpoint 'x'"),
                    Catch::Contains("field 'ngf' appears twice"));
  CHECK_THROWS_WITH(parse_config_text(text + "bogus\n", "checkpoint 'x'"),
                    Catch::Contains("is not a known 'field=value'"));
  std::string missing = with("ndf", "");
  missing.erase(missing.find("ndf="), 5);
  CHECK_THROWS_WITH(parse_config_text(missing, "checkpoint 'x'"), Catch::Contains("lacks the field 'ndf'"));
  // n_blocks = 10^9 parses and validates, and the memory check refuses it before anything is built.
  const TrainConfig huge = parse_config_text(with("n_blocks", "1000000000"), "checkpoint 'x'");
  CHECK_THROWS_WITH(check_training_memory(huge, 0, 64e9),
                    Catch::StartsWith("--n-blocks must be small enough for the memory available") &&
                        Catch::EndsWith("(got 1000000000)"));
}

TEST_CASE("Every file of the checkpoint fuzz corpus loads or is refused with a message", "[checkpoint][faults]") {
  // fuzz/corpus/trainer_checkpoint/ (fuzz/trainer_checkpoint.cpp): first byte % 3 = 1: a whole file,
  // 0: the file as if re-signed (checksums not verified), 2: the configuration text alone.
  // seed-patchnce-* restore completely, seed-no-heads-* up to the heads, which they lack.
  const fs::path corpus = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_checkpoint";
  REQUIRE(fs::is_directory(corpus));
  const std::string name = "checkpoint 'corpus'";
  int seeds = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string file = entry.path().filename().string();
    const std::string data = read_text(entry.path());
    REQUIRE_FALSE(data.empty());
    std::string error;
    bool loaded = false;
    try {
      std::string bytes = data.substr(1);
      const int mode = static_cast<unsigned char>(data[0]) % 3;
      if (mode == 2) {
        check_training_memory(parse_config_text(bytes, name), 0, 4e9);
      } else {
        CheckpointFile ckpt(std::move(bytes), name, mode == 1);
        const TrainConfig config = read_checkpoint_config(ckpt);
        check_training_memory(config, 0, 4e9);
        Trainer t(config, torch::kCPU);
        checkpoint::restore_state(t, ckpt);
      }
      loaded = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
    INFO(file << ": " << (loaded ? "loaded" : error));
    CHECK((loaded || !error.empty()));
    if (file.rfind("seed-no-heads-", 0) == 0) {
      CHECK_THAT(error, Catch::StartsWith(name + ": tensor 'F.") && Catch::EndsWith("' is missing"));
      ++seeds;
    } else if (file.rfind("seed-", 0) == 0) {
      CHECK(loaded);
      ++seeds;
    }
  }
  CHECK(seeds == 4);
}

TEST_CASE("translate and --resume refuse damaged, crafted and old-format checkpoints with a message, not a signal",
          "[checkpoint][cli][faults]") {
  TempDir dir("corrupt");
  const fs::path run = dir.path / "run", ckpt = run / "ckpt.safetensors";
  REQUIRE(run_trainer(tiny_train(run, "2"), dir.path / "train.log").status == 0);
  REQUIRE(run_trainer({"synth", "--output", (dir.path / "data").string(), "--count", "1", "--size", "24"},
                      dir.path / "synth.log")
              .status == 0);
  const std::string good = read_text(ckpt);
  const std::vector<std::string> translate = {
      "translate", "--checkpoint",           ckpt.string(), "--input", (dir.path / "data" / "testA").string(),
      "--output",  (dir.path / "o").string()};
  const std::vector<std::string> resume =
      tiny_train(run, "2") + std::vector<std::string>{"--resume"};  // restores all, then ends
  const auto refused = [&](const std::string& bytes, const std::vector<std::vector<std::string>>& commands,
                           const std::string& phrase) {
    write_bytes(ckpt, bytes);
    for (const auto& args : commands) {
      const auto result = run_trainer(args, dir.path / "refused.log");
      INFO(args[0] << ": " << result.output);
      CHECK(result.status == 1);  // an exit with a message; a signal would be negative
      CHECK_THAT(result.output, Catch::Contains("checkpoint '" + ckpt.string() + "'") && Catch::Contains(phrase));
      CHECK_THAT(result.output, !Catch::Contains("INTERNAL ASSERT") && !Catch::Contains("stoll"));
    }
  };
  std::string bad = good;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 64; ++i) bad[i] = static_cast<char>(~bad[i]);
  refused(bad, {translate, resume}, "is corrupt: the XXH3-64 of its data section is ");
  refused(good.substr(0, good.size() - 1000), {translate}, "field 'data_offsets'");
  refused(std::string("PK\x03\x04", 4) + std::string(200, '\0'), {translate, resume},
          "is a checkpoint of the old format");
  // Values a user could not have typed, in a file with valid checksums.
  write_bytes(ckpt, good);
  const auto config = checkpoint::read_config(ckpt);
  Trainer t(config, torch::kCPU);
  checkpoint::restore(t, ckpt);
  const auto contents = checkpoint::contents(t);
  const auto& tensors = contents.first;
  const auto& metadata = contents.second;
  const std::string g = first_parameter("G", *t.G);
  auto nan = tensors.at(g).clone();
  nan.view(-1)[3] = std::numeric_limits<float>::infinity();
  auto crafted = tensors;
  crafted[g] = nan;
  refused(checkpoint_bytes(crafted, metadata), {translate, resume}, "tensor '" + g + "' contains NaN or Inf");
  crafted = tensors;
  crafted["opt_D.0.exp_avg_sq"] = -crafted.at("opt_D.0.exp_avg_sq") - 1;
  refused(checkpoint_bytes(crafted, metadata), {resume}, "tensor 'opt_D.0.exp_avg_sq' holds negative values");
  crafted = tensors;
  crafted["D.extra"] = torch::zeros({3});
  refused(checkpoint_bytes(crafted, metadata), {resume},
          "tensor 'D.extra' belongs to nothing this configuration builds");
  auto meta = metadata;
  meta["config"].replace(meta["config"].find("ngf=4"), 5, "ngf=abc");
  refused(checkpoint_bytes(tensors, meta), {translate, resume}, "field 'ngf' must be an integer (got 'abc')");
  meta = metadata;
  meta["config"].replace(meta["config"].find("n_blocks=1"), 10, "n_blocks=1000000000");
  refused(checkpoint_bytes(tensors, meta), {translate},
          "its networks (ngf 4, n_blocks 1000000000, ndf 4, 24 x 24 images) need about ");
  // A run folder that holds only a checkpoint of the old format is not resumed nor overwritten.
  fs::remove(ckpt);
  write_bytes(run / "ckpt.pt", std::string("PK\x03\x04", 4));
  const auto result = run_trainer(resume, dir.path / "old.log");
  CHECK(result.status == 1);
  CHECK_THAT(
      result.output,
      Catch::Contains("holds ckpt.pt, a checkpoint of the old LibTorch-archive format, which is no longer read"));
}

// Checkpoints from outside: the file's checksum, its configuration read
// with the command line's rules, the fuzz corpus, and translate / --resume on damaged files.
#include "trainer/tests/fault_helpers.hpp"

#include <sstream>

using namespace trainer_tests;

TEST_CASE("Checkpoint files carry a checksum of their contents; a changed byte is refused", "[checkpoint][faults]") {
  TempDir dir("ckptfile");
  const auto path = dir.path / "c.pt";
  torch::serialize::OutputArchive archive;
  archive.write("weights", torch::arange(0, 20000, torch::kFloat32));
  archive.write("config", c10::IValue(std::string("ngf=4\n")));
  write_checkpoint_file(archive, path);
  const std::string good = read_text(path);
  REQUIRE(good.rfind(kCheckpointMagic, 0) == 0);
  {
    torch::serialize::InputArchive in;
    const std::string payload = read_checkpoint_bytes(path);
    in.load_from(payload.data(), payload.size());
    torch::Tensor w;
    in.read("weights", w);
    CHECK(torch::equal(w, torch::arange(0, 20000, torch::kFloat32)));
  }
  // 64 bytes flipped inside the tensor record: the checksum must refuse it.
  std::string bad = good;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 64; ++i) bad[i] = static_cast<char>(~bad[i]);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
  CHECK_THROWS_WITH(read_checkpoint_bytes(path), Catch::Contains("is corrupt: the checksum of its contents is"));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() - 100);
  CHECK_THROWS_WITH(read_checkpoint_bytes(path), Catch::Contains("is truncated or has trailing bytes"));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << good << "x";
  CHECK_THROWS_WITH(read_checkpoint_bytes(path), Catch::Contains("is truncated or has trailing bytes"));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(kCheckpointMagic) + "bytes -1 checksum zz\n";
  CHECK_THROWS_WITH(read_checkpoint_bytes(path), Catch::Contains("has a damaged header"));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "hello";
  CHECK_THROWS_WITH(read_checkpoint_bytes(path), Catch::Contains("is not a patchgcl-trainer checkpoint"));
  CHECK_THROWS_WITH(read_checkpoint_bytes(dir.path), Catch::Contains("is a folder, not a file"));
  // The checksum sees every byte, including the last of an odd-length tail.
  std::string text = "abcdefghijk";
  const uint64_t before = checksum64(text.data(), text.size());
  text.back() = 'K';
  CHECK(checksum64(text.data(), text.size()) != before);
}

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
  CHECK_THROWS_WITH(parse_config_text(with("lr", "nan"), "checkpoint 'x'"), Catch::Contains("--lr must be a finite number > 0 (got nan)"));
  CHECK_THROWS_WITH(parse_config_text(with("loss", "triplet"), "checkpoint 'x'"), Catch::Contains("unknown loss 'triplet'"));
  CHECK_THROWS_WITH(parse_config_text(with("flip", "2"), "checkpoint 'x'"), Catch::Contains("field 'flip' must be 0 or 1"));
  CHECK_THROWS_WITH(parse_config_text(text + "ngf=8\n", "checkpoint 'x'"), Catch::Contains("field 'ngf' appears twice"));
  CHECK_THROWS_WITH(parse_config_text(text + "bogus\n", "checkpoint 'x'"), Catch::Contains("is not a known 'field=value'"));
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
  // 0: the archive alone (as if re-signed), 2: the configuration text alone; the seeds load
  // completely. regression-libtorch-* make LibTorch's zip reader leak (not our code): the fuzz
  // target, which turns leak detection off around it, exercises them.
  const fs::path corpus = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_checkpoint";
  REQUIRE(fs::is_directory(corpus));
  const std::string name = "checkpoint 'corpus'";
  int seeds = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind("regression-libtorch-", 0) == 0) continue;
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
        if (mode == 1) bytes = verify_checkpoint_bytes(std::move(bytes), name);
        torch::serialize::InputArchive archive, g;
        load_archive_bytes(archive, bytes, name, torch::kCPU);
        const TrainConfig config = read_archive_config(archive, name);
        check_training_memory(config, 0, 4e9);
        read_archive_step(archive, config, name);
        ResnetGenerator G(GeneratorOptions().ngf(config.ngf).n_blocks(config.n_blocks));
        archive.read("G", g);
        load_checked(*G, g, name, "G");
      }
      loaded = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
    INFO(file << ": " << (loaded ? "loaded" : error));
    CHECK((loaded || !error.empty()));
    if (file.rfind("seed-", 0) == 0) {
      CHECK(loaded);
      ++seeds;
    }
  }
  CHECK(seeds == 6);
}

TEST_CASE("translate and --resume refuse a checkpoint with 64 flipped bytes or crafted values", "[checkpoint][cli][faults]") {
  TempDir dir("corrupt");
  const fs::path run = dir.path / "run";
  REQUIRE(run_trainer(tiny_train(run, "2"), dir.path / "train.log").status == 0);
  REQUIRE(run_trainer({"synth", "--output", (dir.path / "data").string(), "--count", "1", "--size", "24"},
                      dir.path / "synth.log").status == 0);
  const std::string good = read_text(run / "ckpt.pt");
  const std::vector<std::string> translate = {"translate", "--checkpoint", (run / "ckpt.pt").string(), "--input",
                                              (dir.path / "data" / "testA").string(), "--output", (dir.path / "o").string()};
  // 64 bytes flipped inside a tensor record: translate and --resume must both refuse it.
  std::string bad = good;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 64; ++i) bad[i] = static_cast<char>(~bad[i]);
  std::ofstream(run / "ckpt.pt", std::ios::binary | std::ios::trunc) << bad;
  for (const auto& args : {translate, tiny_train(run, "4") + std::vector<std::string>{"--resume"}}) {
    const auto result = run_trainer(args, dir.path / "corrupt.log");
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("/ckpt.pt' is corrupt: the checksum of its contents is "));
  }
  // Values a user could not have typed, in an archive with a valid checksum.
  std::ofstream(run / "ckpt.pt", std::ios::binary | std::ios::trunc) << good;
  const std::string config = checkpoint::read_config(run / "ckpt.pt").serialize();
  auto crafted = [&](const c10::IValue& config_entry, const std::string& phrase) {
    torch::serialize::OutputArchive out;
    out.write("format", c10::IValue(std::string("patchgcl-trainer-1")));
    out.write("config", config_entry);
    out.write("step", c10::IValue(int64_t{0}));
    write_checkpoint_file(out, run / "ckpt.pt");
    const auto result = run_trainer(translate, dir.path / "crafted.log");
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains(phrase));
    CHECK_THAT(result.output, !Catch::Contains("INTERNAL ASSERT") && !Catch::Contains("stoll"));
  };
  auto with = [&](const std::string& key, const std::string& value) {
    const auto at = config.find(key + "=");
    return c10::IValue(config.substr(0, at) + key + "=" + value + config.substr(config.find('\n', at)));
  };
  crafted(c10::IValue(int64_t{64}), "entry 'config' must be text (got a Int)");
  crafted(with("ngf", "abc"), "field 'ngf' must be an integer (got 'abc')");
  crafted(with("ngf", "0"), "holds a configuration the command line refuses: --ngf must be at least 1 (got 0)");
  crafted(with("n_blocks", "1000000000"), "its networks (ngf 4, n_blocks 1000000000, ndf 4, 24 x 24 images) need about ");
}

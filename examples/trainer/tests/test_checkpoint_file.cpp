// Checkpoints from outside: the safetensors file, its checksums, its configuration read with the
// command line's rules, every tensor checked against the networks, old-format files, the fuzz
// corpus, and translate / --resume on damaged and crafted files.
#include "trainer/tests/fault_helpers.hpp"

#include <sstream>

using namespace trainer_tests;

namespace {

/// A small trainer after two steps (Adam has state for every parameter), with a log window whose
/// sums need all 17 digits of a double.
std::unique_ptr<Trainer> stepped_trainer() {
  torch::set_num_threads(1);
  auto config = tiny_config(LossKind::kPatchNCE);
  config.ngf = 4;
  config.n_blocks = 1;
  config.ndf = 4;
  config.num_patches = 16;
  config.steps = 6;
  auto t = std::make_unique<Trainer>(config, torch::kCPU);
  UnpairedDataset data(config.data);
  for (int64_t s = 0; s < 2; ++s) t->train_step(data.batch(s, 1));
  t->log_window.add({0.1, 1.0 / 3.0, 2.0 / 7.0, -1e-300, 12345.678901234567});
  return t;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// The name of the first parameter of `module` under `prefix` ("G.model.1.weight").
std::string first_parameter(const std::string& prefix, torch::nn::Module& module) {
  return prefix + "." + module.named_parameters().begin()->key();
}

}  // namespace

TEST_CASE("A checkpoint is a safetensors file that restores networks, Adam's states and counters exactly",
          "[checkpoint][faults]") {
  TempDir dir("ckptfile");
  const auto path = dir.path / "c.safetensors";
  auto a = stepped_trainer();
  checkpoint::save(*a, path);
  CHECK_FALSE(fs::exists(path.string() + ".tmp"));
  const std::string bytes = read_text(path);
  REQUIRE(bytes.size() > 9);
  CHECK(bytes[8] == '{');  // the safetensors layout: 8-byte header length, then the JSON header
  {
    // The library's own reader reads it as a plain safetensors file too.
    const auto file = patchgcl::io::parse_safetensors(bytes, path.string());
    CHECK(file.config.at("format") == kCheckpointFormat);
    CHECK(file.config.at("step") == "2");
    CHECK(file.config.at("world_size") == "1");
    CHECK(file.config.at("config") == a->config().serialize());
    CHECK(file.config.at("data_checksum").size() == 16);
    CHECK(torch::equal(file.at(first_parameter("G", *a->G)), a->G->named_parameters().begin()->value()));
    CHECK(file.at("opt_G.0.step").item<int64_t>() == 2);
    CHECK_FALSE(file.contains("opt_G.0.max_exp_avg_sq"));  // no amsgrad
  }
  torch::manual_seed(999);  // restoring must not depend on the process's RNG history
  Trainer b(a->config(), torch::kCPU);
  checkpoint::restore(b, path);
  CHECK(b.step() == 2);
  CHECK(b.saved_world() == 1);
  CHECK(b.log_window.steps == a->log_window.steps);
  CHECK(b.log_window.sum.G_GAN == a->log_window.sum.G_GAN);  // bit-for-bit: compared with ==
  CHECK(b.log_window.sum.NCE == a->log_window.sum.NCE);
  CHECK(b.log_window.sum.NCE_Y == a->log_window.sum.NCE_Y);
  CHECK(b.log_window.sum.G == a->log_window.sum.G);
  CHECK(same_state(*a->G, *b.G));
  CHECK(same_state(*a->D, *b.D));
  CHECK(same_state(*a->F.module, *b.F.module));
  const auto saved = checkpoint::contents(*a).first, restored = checkpoint::contents(b).first;
  REQUIRE(saved.size() == restored.size());
  int adam = 0;
  for (const auto& [key, value] : saved) {
    INFO(key);
    REQUIRE(restored.count(key));
    CHECK(torch::equal(value, restored.at(key)));
    adam += key.rfind("opt_", 0) == 0;
  }
  // exp_avg, exp_avg_sq and step of every parameter of the three optimisers.
  CHECK(adam == 3 * static_cast<int>(a->G->parameters().size() + a->D->parameters().size() +
                                     a->F.module->parameters().size()));
  // The next step of both is the same, bit for bit (Adam's moments and step counts took effect).
  UnpairedDataset data(a->config().data);
  a->train_step(data.batch(2, 1));
  b.train_step(data.batch(2, 1));
  CHECK(same_state(*a->G, *b.G));
  CHECK(same_state(*a->D, *b.D));
  CHECK(same_state(*a->F.module, *b.F.module));
  // The same state gives the same bytes.
  checkpoint::save(*a, dir.path / "a.safetensors");
  checkpoint::save(b, dir.path / "b.safetensors");
  CHECK(read_text(dir.path / "a.safetensors") == read_text(dir.path / "b.safetensors"));
}

TEST_CASE("Damaged checkpoints and checkpoints of the old format are refused, naming the file and the field",
          "[checkpoint][faults]") {
  TempDir dir("ckptdamaged");
  const auto path = dir.path / "c.safetensors";
  auto a = stepped_trainer();
  checkpoint::save(*a, path);
  const std::string good = read_text(path);
  const auto refused = [&](const std::string& bytes, const std::string& phrase) {
    write_bytes(path, bytes);
    Trainer t(a->config(), torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(t, path),
                      Catch::Contains("checkpoint '" + path.string() + "'") && Catch::Contains(phrase));
  };
  std::string flipped = good;
  flipped[flipped.size() - 3] ^= 0x10;  // one bit of the data section
  refused(flipped, "is corrupt: the XXH3-64 of its data section is ");
  // One digit of the header that leaves its JSON valid: the step, 2 -> 3.
  const auto at = good.find("\"step\":\"2\"");
  REQUIRE(at != std::string::npos);
  REQUIRE(at < 8 + 100000);
  flipped = good;
  flipped[at + 8] = '3';
  refused(flipped, "is corrupt: the XXH3-64 of its header (tensor table and metadata) is ");
  refused(good.substr(0, good.size() / 2), "is damaged (cut short, or changed after it was written) or not a "
                                           "checkpoint (a safetensors file): field 'data_offsets': bytes [");
  refused(good.substr(0, 100), "field 'header length': ");
  refused(good + "x", "field 'data': 1 bytes after the end of the last tensor belong to no tensor");
  std::string huge = good;
  for (int i = 0; i < 8; ++i) huge[i] = '\xff';
  refused(huge, "field 'header length': 18446744073709551615 bytes is more than the format's cap of 100000000");
  refused("hello", "field 'header length': the file has 5 bytes, fewer than the 8 of the header length");
  // A shape whose byte count overflows, declared in a header that is otherwise valid.
  const std::string header = R"({"G.x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})";
  std::string crafted(8, '\0');
  for (int i = 0; i < 8; ++i) crafted[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  refused(crafted + header + "abcd", "field 'shape");
  // The old format: a LibTorch archive, bare (a zip) or behind the checksummed container.
  const std::string old_message = "is a checkpoint of the old format (a LibTorch archive, ";
  refused(std::string("PK\x03\x04\x14\x00\x00\x00\x08\x00", 10) + std::string(100, 'z'), old_message + "a zip file)");
  refused(std::string(kOldCheckpointMagic) + "bytes 4 checksum 0123456789abcdef\nPK..",
          old_message + "behind the 'patchgcl-trainer checkpoint 2' header), which is no longer read");
  refused("PK", "field 'header length'");  // too short to be a zip: not taken for one
  std::string bad_sum = good;
  const auto sum_at = good.find("\"data_checksum\":\"");
  REQUIRE(sum_at != std::string::npos);
  bad_sum.replace(sum_at + 17, 16, "zzzzzzzzzzzzzzzz");
  refused(bad_sum, "__metadata__ 'data_checksum' must be 16 lowercase hex digits (got 'zzzzzzzzzzzzzzzz')");
  Trainer t(a->config(), torch::kCPU);
  CHECK_THROWS_WITH(checkpoint::restore(t, dir.path), Catch::Contains("is a folder, not a file"));
  CHECK_THROWS_WITH(checkpoint::restore(t, dir.path / "none.safetensors"), Catch::Contains("does not exist"));
}

TEST_CASE("Crafted checkpoints with valid checksums are refused: each tensor and metadata value is checked",
          "[checkpoint][faults]") {
  TempDir dir("ckptcrafted");
  const auto path = dir.path / "c.safetensors";
  auto a = stepped_trainer();
  const auto contents = checkpoint::contents(*a);
  const auto& tensors = contents.first;
  const auto& metadata = contents.second;
  const std::string g = first_parameter("G", *a->G), d = first_parameter("D", *a->D);
  const auto refused_file = [&](const std::map<std::string, torch::Tensor>& t,
                                const std::map<std::string, std::string>& m, const std::string& phrase) {
    write_bytes(path, checkpoint_bytes(t, m));
    Trainer b(a->config(), torch::kCPU);
    CHECK_THROWS_WITH(checkpoint::restore(b, path),
                      Catch::Contains("checkpoint '" + path.string() + "'") && Catch::Contains(phrase));
  };
  const auto refused = [&](const std::map<std::string, torch::Tensor>& t, const std::string& phrase) {
    refused_file(t, metadata, phrase);
  };
  const auto refused_meta = [&](const std::map<std::string, std::string>& m, const std::string& phrase) {
    refused_file(tensors, m, phrase);
  };
  const auto with_tensor = [&](const std::string& key, const torch::Tensor& value) {
    auto t = tensors;
    t[key] = value;
    return t;
  };
  const auto without = [&](const std::string& key) {
    auto t = tensors;
    t.erase(key);
    return t;
  };
  const auto with_meta = [&](const std::string& key, const std::string& value) {
    auto m = metadata;
    m[key] = value;
    return m;
  };
  const torch::Tensor w = tensors.at(g);
  // Tensors: shape, dtype, finiteness, presence, nothing extra.
  refused(with_tensor(g, torch::zeros({2, 2})), "tensor '" + g + "' has shape [2, 2] and dtype Float, expected ");
  refused(with_tensor(g, w.to(torch::kFloat64)), "tensor '" + g + "' has shape ");
  refused(with_tensor(g, w.to(torch::kFloat64)), "and dtype Double, expected ");
  auto nan = w.clone();
  nan.view(-1)[0] = std::nan("");
  refused(with_tensor(g, nan), "tensor '" + g + "' contains NaN or Inf");
  refused(without(d), "tensor '" + d + "' is missing");
  refused(with_tensor("G.extra.weight", torch::zeros({1})), "tensor 'G.extra.weight' belongs to nothing this configuration builds");
  refused(with_tensor("H.weight", torch::zeros({1})), "tensor 'H.weight' belongs to none of the groups G, D, F, opt_G, opt_D, opt_F");
  // Adam's states.
  refused(with_tensor("opt_D.0.exp_avg_sq", -tensors.at("opt_D.0.exp_avg_sq") - 1),
          "tensor 'opt_D.0.exp_avg_sq' holds negative values");
  refused(with_tensor("opt_G.1.step", torch::tensor(int64_t{0})), "tensor 'opt_G.1.step' must be in [1, 2]");
  refused(with_tensor("opt_G.1.step", torch::tensor(int64_t{1}).view({1})), "tensor 'opt_G.1.step' has shape [1]");
  refused(without("opt_F.0.exp_avg"), "tensor 'opt_F.0.exp_avg' is missing (the state of a parameter Adam has stepped)");
  refused(without("opt_F.0.step"), "tensor 'opt_F.0.exp_avg' is not expected here (no step count 'opt_F.0.step')");
  refused(with_tensor("opt_G.0.max_exp_avg_sq", tensors.at("opt_G.0.exp_avg_sq")),
          "tensor 'opt_G.0.max_exp_avg_sq' is not expected here (this optimiser does not use amsgrad)");
  refused(with_tensor("opt_G.999.step", torch::tensor(int64_t{1})), "tensor 'opt_G.999.step' belongs to nothing");
  // Metadata: every value as the command line would check it.
  refused_meta(with_meta("step", "abc"), "__metadata__: field 'step' must be an integer (got 'abc')");
  refused_meta(with_meta("step", "7"), "__metadata__ 'step' must be in [0, 6] (--steps) (got 7)");
  refused_meta(with_meta("world_size", "0"), "__metadata__ 'world_size' must be in [1, 2^20] (got 0)");
  refused_meta(with_meta("log_window", "1,2,3"), "__metadata__ 'log_window' must hold 6 comma-separated numbers");
  refused_meta(with_meta("log_window", "nan,0,0,0,0,1"), "__metadata__ 'log_window': number 0 must be finite");
  refused_meta(with_meta("log_window", "0,0,0,0,0,9"), "its step count must be in [0, 2]");
  refused_meta(with_meta("format", "patchgcl-trainer-safetensors-0"), "__metadata__ 'format' must be 'patchgcl-trainer-safetensors-1'");
  refused_meta(with_meta("colour", "blue"), "__metadata__ has the unknown key 'colour'");
  auto no_config = metadata;
  no_config.erase("config");
  refused_meta(no_config, "__metadata__ lacks the entry 'config'");
  auto no_format = metadata;
  no_format.erase("format");
  refused_meta(no_format, "is a safetensors file, but not a checkpoint of patchgcl-trainer");
  std::string config = metadata.at("config");
  config.replace(config.find("ngf=4"), 5, "ngf=0");
  refused_meta(with_meta("config", config), "holds a configuration the command line refuses: --ngf must be at least 1 (got 0)");
  config = metadata.at("config");
  config.replace(config.find("n_blocks=1"), 10, "n_blocks=1000000000");
  refused_meta(with_meta("config", config), "n_blocks 1000000000");
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
  CHECK_THROWS_WITH(parse_config_text(with("loss", "triplet"), "checkpoint 'x'"),
                    "checkpoint 'x': field 'loss' must be graph, patchnce or put (got 'triplet')");
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
                      dir.path / "synth.log").status == 0);
  const std::string good = read_text(ckpt);
  const std::vector<std::string> translate = {"translate", "--checkpoint", ckpt.string(), "--input",
                                              (dir.path / "data" / "testA").string(), "--output", (dir.path / "o").string()};
  const std::vector<std::string> resume = tiny_train(run, "2") + std::vector<std::string>{"--resume"};  // restores all, then ends
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
  refused(std::string("PK\x03\x04", 4) + std::string(200, '\0'), {translate, resume}, "is a checkpoint of the old format");
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
  refused(checkpoint_bytes(crafted, metadata), {resume}, "tensor 'D.extra' belongs to nothing this configuration builds");
  auto meta = metadata;
  meta["config"].replace(meta["config"].find("ngf=4"), 5, "ngf=abc");
  refused(checkpoint_bytes(tensors, meta), {translate, resume}, "field 'ngf' must be an integer (got 'abc')");
  meta = metadata;
  meta["config"].replace(meta["config"].find("n_blocks=1"), 10, "n_blocks=1000000000");
  refused(checkpoint_bytes(tensors, meta), {translate}, "its networks (ngf 4, n_blocks 1000000000, ndf 4, 24 x 24 images) need about ");
  // A run folder that holds only a checkpoint of the old format is not resumed nor overwritten.
  fs::remove(ckpt);
  write_bytes(run / "ckpt.pt", std::string("PK\x03\x04", 4));
  const auto result = run_trainer(resume, dir.path / "old.log");
  CHECK(result.status == 1);
  CHECK_THAT(result.output, Catch::Contains("holds ckpt.pt, a checkpoint of the old LibTorch-archive format, which is no longer read"));
}

// Checkpoints from outside: the safetensors file, its checksums, every tensor checked against the
// networks, and old-format files.
#include "trainer/tests/checkpoint_helpers.hpp"

#include <sstream>

using namespace trainer_tests;

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
  CHECK(adam ==
        3 * static_cast<int>(a->G->parameters().size() + a->D->parameters().size() + a->F.module->parameters().size()));
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
  refused(good.substr(0, good.size() / 2),
          "is damaged (cut short, or changed after it was written) or not a "
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
  refused(with_tensor("G.extra.weight", torch::zeros({1})),
          "tensor 'G.extra.weight' belongs to nothing this configuration builds");
  refused(with_tensor("H.weight", torch::zeros({1})),
          "tensor 'H.weight' belongs to none of the groups G, D, F, opt_G, opt_D, opt_F");
  // Adam's states.
  refused(with_tensor("opt_D.0.exp_avg_sq", -tensors.at("opt_D.0.exp_avg_sq") - 1),
          "tensor 'opt_D.0.exp_avg_sq' holds negative values");
  refused(with_tensor("opt_G.1.step", torch::tensor(int64_t{0})), "tensor 'opt_G.1.step' must be in [1, 2]");
  refused(with_tensor("opt_G.1.step", torch::tensor(int64_t{1}).view({1})), "tensor 'opt_G.1.step' has shape [1]");
  refused(without("opt_F.0.exp_avg"),
          "tensor 'opt_F.0.exp_avg' is missing (the state of a parameter Adam has stepped)");
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
  refused_meta(with_meta("format", "patchgcl-trainer-safetensors-0"),
               "__metadata__ 'format' must be 'patchgcl-trainer-safetensors-1'");
  refused_meta(with_meta("colour", "blue"), "__metadata__ has the unknown key 'colour'");
  auto no_config = metadata;
  no_config.erase("config");
  refused_meta(no_config, "__metadata__ lacks the entry 'config'");
  auto no_format = metadata;
  no_format.erase("format");
  refused_meta(no_format, "is a safetensors file, but not a checkpoint of patchgcl-trainer");
  std::string config = metadata.at("config");
  config.replace(config.find("ngf=4"), 5, "ngf=0");
  refused_meta(with_meta("config", config),
               "holds a configuration the command line refuses: --ngf must be at least 1 (got 0)");
  config = metadata.at("config");
  config.replace(config.find("n_blocks=1"), 10, "n_blocks=1000000000");
  refused_meta(with_meta("config", config), "n_blocks 1000000000");
}

// libFuzzer target: the example trainer's checkpoint reader (examples/trainer/train/checkpoint.hpp,
// checkpoint_file.hpp, adam_state.hpp), everything `translate`, `evaluate` and `train --resume` read
// from a ckpt.safetensors before using it, down to the tensors copied into a Trainer.
//
// The first input byte picks what the rest is (byte % 3):
//   1: a whole checkpoint file: the safetensors layout, the metadata, both XXH3-64 checksums, then
//      (rarely reached by mutation: a checksum must match) everything below;
//   0: the same file as if its checksums had been recomputed after an edit (CheckpointFile's
//      verify_checksums = false): the configuration read like the command line, the memory check,
//      and the restore of a Trainer of that configuration (step, world size, log window, G, D, F by
//      name, shape, dtype and finiteness, Adam's states, no tensor left over);
//   2: the configuration text alone, as stored in the metadata's `config`.
// Any exception is a handled refusal; crashes, sanitizer reports, hangs and OOMs are findings.
// PATCHGCL_FUZZ_WRITE_SEEDS=DIR writes the seed corpus (fuzz/corpus/trainer_checkpoint/) and exits.
#define FMT_HEADER_ONLY                      // fmt without its library: the fuzz build links LibTorch only
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION  // stb_image_resize, which the trainer's data headers use
#include "trainer/train/checkpoint.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>

namespace {

using namespace trainer;

/// The configuration of the seed checkpoints: 24 px synthetic images (the smallest), the narrowest networks,
/// PatchNCE (its heads are the smallest: the trainer's heads are 256 wide whatever the networks).
TrainConfig seed_config() {
  TrainConfig c;
  c.data.synthetic_size = c.data.load_size = c.data.crop_size = 24;
  c.data.synthetic_count = 2;
  c.loss = LossKind::kPatchNCE;
  c.ngf = 1;
  c.n_blocks = 1;
  c.ndf = 1;
  c.num_patches = 4;
  c.steps = 4;
  c.decay_steps = 2;
  return c;
}

/// Trainers by configuration text, so that an input of an already seen configuration restores
/// without building networks again (restore overwrites everything it accepts).
Trainer& trainer_for(const TrainConfig& config) {
  static std::map<std::string, std::unique_ptr<Trainer>> cache;
  auto& slot = cache[config.serialize()];
  if (!slot) {
    if (cache.size() > 8) {  // bounded: keep this one's slot, drop the others
      for (auto it = cache.begin(); it != cache.end();) it = it->second ? cache.erase(it) : std::next(it);
    }
    slot = std::make_unique<Trainer>(config, torch::kCPU);
  }
  return *slot;
}

void write(const std::string& path, char mode, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << mode << bytes;
}

/// The seeds: a complete checkpoint after one step, whose heads' large Adam moments are left out (a
/// checkpoint may lack the state of a parameter Adam has not stepped) to keep it small; the same
/// without F and opt_F (refused at F, small: mutations reach the header more often); the configuration.
void write_seeds(const std::string& dir) {
  const TrainConfig config = seed_config();
  Trainer trainer(config, torch::kCPU);
  UnpairedDataset data(config.data);
  trainer.log_window.add(trainer.train_step(data.batch(0, config.batch_size)));
  auto [tensors, metadata] = checkpoint::contents(trainer);
  for (auto it = tensors.begin(); it != tensors.end();)
    it = it->first.rfind("opt_F.", 0) == 0 && it->second.numel() > 256 ? tensors.erase(it) : std::next(it);
  for (auto it = tensors.begin(); it != tensors.end();) {  // opt_F.<i>.step of an erased moment goes too
    const std::string& key = it->first;
    const bool orphan = key.rfind("opt_F.", 0) == 0 && key.size() > 5 && key.compare(key.size() - 5, 5, ".step") == 0 &&
                        !tensors.count(key.substr(0, key.size() - 4) + "exp_avg");
    it = orphan ? tensors.erase(it) : std::next(it);
  }
  const std::string full = checkpoint_bytes(tensors, metadata);
  write(dir + "/seed-patchnce-step1-file", '\1', full);
  for (auto it = tensors.begin(); it != tensors.end();)
    it = it->first.rfind("F.", 0) == 0 || it->first.rfind("opt_F.", 0) == 0 ? tensors.erase(it) : std::next(it);
  const std::string gd = checkpoint_bytes(tensors, metadata);
  write(dir + "/seed-no-heads-file", '\1', gd);
  write(dir + "/seed-no-heads-resigned", '\0', gd);
  write(dir + "/seed-config", '\2', config.serialize());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  if (const char* dir = std::getenv("PATCHGCL_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string name = "checkpoint 'fuzz'";
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int mode = data[0] % 3;
  try {
    if (mode == 2) {
      const TrainConfig config = parse_config_text(bytes, name);
      check_training_memory(config, 0, 4e9);
      return 0;
    }
    CheckpointFile file(std::move(bytes), name, /*verify_checksums=*/mode == 1);
    const TrainConfig config = read_checkpoint_config(file);
    check_training_memory(config, 0, 4e9);
    // Fast executions: small networks and images only (larger ones take the same path), no VGG16
    // (its 15M parameters; the trainer's VGG features come from a weight file, not the checkpoint).
    const double ngf = static_cast<double>(config.ngf), ndf = static_cast<double>(config.ndf);
    if (ngf * ngf * (180.0 + 288.0 * static_cast<double>(config.n_blocks)) > 2e5 || ndf > 16 ||
        config.synthetic_size_or_crop() > 64 || config.features == FeatureKind::kVGG16)
      return 0;
    checkpoint::restore_state(trainer_for(config), file);
  } catch (const std::exception&) {
    // a refusal with a message: what hostile input must get
  }
  return 0;
}

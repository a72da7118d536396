// Checkpoint I/O: a Trainer's whole state (networks, Adam's states, step, log window and
// configuration) in one safetensors file (checkpoint_file.hpp, adam_state.hpp), written atomically
// and fsync'ed, so that `--resume` continues bit-for-bit and a killed process or a power loss never
// leaves a torn checkpoint. A checkpoint comes from outside (the run folder, a download): everything
// read from it is checked, the file's layout and checksums (checkpoint_file.hpp), every
// configuration value with the command line's rules (config_text.hpp), the memory its networks
// need, and every tensor's name, shape, dtype and finiteness against the networks being built,
// before any of it is used. Tensors are copied into the networks' own (never replaced by the file's).
//
// No random generator state is saved: the trainer draws nothing from a generator's running state.
// Every draw is seeded from (seed, step) (Trainer::train_step re-seeds LibTorch's generator, the
// data's sampling and augmentation use mix_seed(seed, ...)), so the step alone restores them.
#pragma once

#include "trainer/train/adam_state.hpp"
#include "trainer/train/atomic_file.hpp"
#include "trainer/train/checkpoint_file.hpp"
#include "trainer/train/resources.hpp"
#include "trainer/train/trainer.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace trainer::checkpoint {

/// "checkpoint 'PATH'", how every error about a checkpoint starts.
inline std::string describe(const std::filesystem::path& path) { return fmt::format("checkpoint '{}'", path.string()); }

/// Refuses a checkpoint whose networks would not fit in memory (weights, one forward at the training
/// size) before they are built: its configuration passed the command line's checks, but a 1.5 KB
/// file can still ask for n_blocks = 10^9.
inline void check_model_memory(const std::filesystem::path& path, const TrainConfig& c) {
  const double available = available_memory();
  const int64_t side = c.synthetic_size_or_crop();
  const double needed = 4.0 * parameter_count(c) + estimate_translation_memory(c, side, side);
  if (available >= 0 && needed > available)
    throw std::runtime_error(fmt::format(
        "{}: its networks (ngf {}, n_blocks {}, ndf {}, {} x {} images) need about {}, "
        "and {} are available",
        describe(path), c.ngf, c.n_blocks, c.ndf, side, side, format_bytes(needed), format_bytes(available)));
}

/// A checkpoint opened once for everything read from it: the file's layout and checksums
/// verified, its configuration validated and small enough for this machine's memory.
struct Opened {
  explicit Opened(const std::filesystem::path& path)
      : name(describe(path)), file(read_checkpoint_bytes(path, name), name), config(read_checkpoint_config(file)) {
    check_model_memory(path, config);
  }
  int64_t step() const { return read_checkpoint_step(file, config); }

  std::string name;
  CheckpointFile file;
  TrainConfig config;
};

/// The configuration the checkpoint at `path` was written with.
inline TrainConfig read_config(const std::filesystem::path& path) { return Opened(path).config; }

/// The step stored in the checkpoint at `path`.
inline int64_t read_step(const std::filesystem::path& path) { return Opened(path).step(); }

/// Refuses to continue the checkpoint at `path` (written with `saved`) under `wanted`, listing
/// every field that differs and what to do instead.
inline void require_same_config(const std::filesystem::path& path, const TrainConfig& saved,
                                const TrainConfig& wanted) {
  const auto diff = saved.differences(wanted);
  if (diff.empty()) return;
  std::string msg = fmt::format("checkpoint '{}' was written with a different configuration:", path.string());
  for (const auto& d : diff) msg += "\n  " + d;
  throw std::runtime_error(msg + "\nrun the same command as the original run, adding --resume");
}

/// The log window as text: the 5 loss sums (shortest decimal forms that read back to the same
/// doubles), then the step count, comma-separated.
inline std::string log_window_text(const LogWindow& w) {
  return fmt::format("{},{},{},{},{},{}", w.sum.D, w.sum.G_GAN, w.sum.NCE, w.sum.NCE_Y, w.sum.G, w.steps);
}
/// The log window of a checkpoint: 5 finite sums and a step count in [0, `step`].
inline LogWindow read_log_window(const CheckpointFile& file, int64_t step) {
  const std::string& text = file.meta("log_window");
  std::vector<std::string> parts;
  for (size_t a = 0;;) {
    const size_t b = text.find(',', a);
    parts.push_back(text.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos || parts.size() > 6) break;
    a = b + 1;
  }
  const std::string where = file.name() + ": __metadata__ 'log_window'";
  if (parts.size() != 6)
    throw std::runtime_error(fmt::format("{} must hold 6 comma-separated numbers (got '{}')", where,
                                         patchgcl::io::detail::st_printable(text, 64)));
  double sum[5];
  for (int i = 0; i < 5; ++i) {
    sum[i] = detail::parse_real_field(fmt::format("log_window[{}]", i), parts[i], where);
    if (!std::isfinite(sum[i]))
      throw std::runtime_error(
          fmt::format("{}: number {} must be finite (got '{}')", where, i, parts[i].substr(0, 64)));
  }
  LogWindow w;
  w.sum = {sum[0], sum[1], sum[2], sum[3], sum[4]};
  w.steps = detail::parse_integer_field<int64_t>("log_window[5]", parts[5], where);
  if (w.steps < 0 || w.steps > step)
    throw std::runtime_error(
        fmt::format("{}: its step count must be in [0, {}] (the checkpoint's step) (got {})", where, step, w.steps));
  return w;
}

/// Adds `module`'s parameters and buffers to `tensors` as `prefix`.<name>.
inline void add_module(std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
                       const torch::nn::Module& module) {
  for (const auto& p : module.named_parameters()) tensors[prefix + "." + p.key()] = p.value();
  for (const auto& b : module.named_buffers()) tensors[prefix + "." + b.key()] = b.value();
}

/// Copies `file`'s tensors `prefix`.<name> into `module`'s parameters and buffers, after checking
/// all of them (present, the shape and dtype the module has, finite); no tensor of the module is
/// replaced, and none is changed unless all pass.
inline void load_module(CheckpointFile& file, const std::string& prefix, torch::nn::Module& module) {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (the module's tensor, the file's)
  const auto add = [&](const std::string& key, const torch::Tensor& t) {
    copies.emplace_back(t, file.tensor(prefix + "." + key, t.scalar_type(), t.sizes()));
  };
  for (const auto& p : module.named_parameters()) add(p.key(), p.value());
  for (const auto& b : module.named_buffers()) add(b.key(), b.value());
  torch::NoGradGuard no_grad;
  for (auto& [target, value] : copies) target.copy_(value);
}

/// What a checkpoint of `trainer` holds: the tensors and the metadata (checkpoint_bytes adds the checksums).
inline std::pair<std::map<std::string, torch::Tensor>, std::map<std::string, std::string>> contents(
    const Trainer& trainer) {
  std::map<std::string, torch::Tensor> tensors;
  add_module(tensors, "G", *trainer.G);
  add_module(tensors, "D", *trainer.D);
  add_module(tensors, "F", *trainer.F.module);
  add_adam_state(tensors, "opt_G", *trainer.opt_G);
  add_adam_state(tensors, "opt_D", *trainer.opt_D);
  add_adam_state(tensors, "opt_F", *trainer.opt_F);
  std::map<std::string, std::string> metadata = {
      {"format", kCheckpointFormat},
      {"config", trainer.config().serialize()},
      {"step", std::to_string(trainer.step())},
      {"world_size", std::to_string(trainer.world())},  // docs/distributed.md
      {"log_window", log_window_text(trainer.log_window)}};
  return {std::move(tensors), std::move(metadata)};
}

/// Writes `trainer`'s state to `path` atomically: the file goes to `path`.tmp, is fsync'ed,
/// renamed over `path`, and the folder is fsync'ed, so a killed process or a power loss leaves
/// either the previous checkpoint or the new one, never a torn file. A `.tmp` left by a killed
/// write is simply overwritten by the next save.
inline void save(const Trainer& trainer, const std::filesystem::path& path) {
  const auto [tensors, metadata] = contents(trainer);
  write_file_atomically(path, checkpoint_bytes(tensors, metadata));
}

/// Restores into `trainer` (built with the configuration of `file`) everything `save` wrote;
/// refuses a checkpoint holding a tensor the trainer does not have.
inline void restore_state(Trainer& trainer, CheckpointFile& file) {
  const int64_t step = read_checkpoint_step(file, trainer.config());
  const LogWindow window = read_log_window(file, step);
  const int64_t world = read_checkpoint_integer(file, "world_size", 1, int64_t{1} << 20, "[1, 2^20]");
  load_module(file, "G", *trainer.G);
  load_module(file, "D", *trainer.D);
  load_module(file, "F", *trainer.F.module);
  restore_adam_state(file, "opt_G", *trainer.opt_G, step);
  restore_adam_state(file, "opt_D", *trainer.opt_D, step);
  restore_adam_state(file, "opt_F", *trainer.opt_F, step);
  file.require_all_used();
  trainer.restore_step(step);
  trainer.log_window = window;
  trainer.restore_world(static_cast<int>(world));
}

/// Restores into `trainer` everything `save` wrote to `path`; refuses a checkpoint of a different
/// configuration.
inline void restore(Trainer& trainer, const std::filesystem::path& path) {
  Opened ckpt(path);
  require_same_config(path, ckpt.config, trainer.config());
  restore_state(trainer, ckpt.file);
}

/// Rebuilds a trainer (networks + configuration) from a checkpoint with its generator loaded,
/// for translate/evaluate.
inline std::unique_ptr<Trainer> load_model(const std::filesystem::path& path, torch::Device device,
                                           const std::string& vgg_weights = "") {
  Opened ckpt(path);
  TrainConfig config = ckpt.config;
  // The VGG features only matter for training; translation needs the generator alone.
  if (config.features == FeatureKind::kVGG16 && vgg_weights.empty()) config.features = FeatureKind::kEncoder;
  auto trainer = std::make_unique<Trainer>(config, device, vgg_weights);
  load_module(ckpt.file, "G", *trainer->G);
  return trainer;
}

/// `--checkpoint` may name the checkpoint or the run folder that holds it as ckpt.safetensors.
inline std::filesystem::path resolve(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return path;
  if (std::filesystem::is_regular_file(path / kCheckpointFileName, ec)) return path / kCheckpointFileName;
  const bool old = std::filesystem::is_regular_file(path / "ckpt.pt", ec);
  bad_option("--checkpoint", fmt::format("a {} file or a run folder that holds one", kCheckpointFileName),
             fmt::format("'{}', a folder without {}{}", path.string(), kCheckpointFileName,
                         old ? " (its ckpt.pt is a checkpoint of the old LibTorch-archive format, which is no longer "
                               "read: docs/trainer.md, \"Checkpoints and resume\")"
                             : ""));
}

}  // namespace trainer::checkpoint

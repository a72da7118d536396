// Checkpoint I/O: a Trainer's whole state (networks, optimiser states, step, log window and
// configuration) in one LibTorch archive, written atomically and fsync'ed, so that `--resume`
// continues bit-for-bit and a killed process or a power loss never leaves a torn checkpoint.
// A checkpoint comes from outside (the run folder, a download): everything read from it is checked,
// the file's length and checksum (checkpoint_file.hpp), every configuration value with the command
// line's rules (config_text.hpp), the memory its networks need, and every tensor's shape, dtype and
// finiteness, before any of it is used.
#pragma once

#include "trainer/train/checkpoint_file.hpp"
#include "trainer/train/resources.hpp"
#include "trainer/train/trainer.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <unistd.h>

namespace trainer::checkpoint {

/// "checkpoint 'PATH'", how every error about a checkpoint starts.
inline std::string describe(const std::filesystem::path& path) { return fmt::format("checkpoint '{}'", path.string()); }

/// fsync(2) of a file or folder, so that what was written (or renamed into a folder) survives a
/// power loss, not only a killed process. Folders that cannot be synced (EINVAL on some file
/// systems) are skipped; any other failure throws.
inline void sync_to_disk(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open '{}' to sync it: {}", path.string(), std::strerror(errno)));
  const int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    throw std::runtime_error(fmt::format("cannot sync '{}' to disk: {}", path.string(), std::strerror(err)));
}

/// Refuses a checkpoint whose networks would not fit in memory (weights, one forward at the training
/// size) before they are built: its configuration passed the command line's checks, but a 1.5 KB
/// file can still ask for n_blocks = 10^9.
inline void check_model_memory(const std::filesystem::path& path, const TrainConfig& c) {
  const double available = available_memory();
  const int64_t side = c.synthetic_size_or_crop();
  const double needed = 4.0 * parameter_count(c) + estimate_translation_memory(c, side, side);
  if (available >= 0 && needed > available)
    throw std::runtime_error(fmt::format("{}: its networks (ngf {}, n_blocks {}, ndf {}, {} x {} images) need about {}, "
                                         "and {} are available", describe(path), c.ngf, c.n_blocks, c.ndf, side, side,
                                         format_bytes(needed), format_bytes(available)));
}

/// A checkpoint opened once for everything read from it: the file's length and checksum verified,
/// the archive loaded, its configuration validated and small enough for this machine's memory.
struct Opened {
  Opened(const std::filesystem::path& path, torch::Device device) : name(describe(path)) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw std::runtime_error(name + " does not exist");
    load_archive_bytes(archive, read_checkpoint_bytes(path), name, device);
    config = read_archive_config(archive, name);
    check_model_memory(path, config);
  }
  /// Hands the sub-archive `key` to `reader`; a missing entry is an error naming it.
  template <typename Reader>
  void read_part(const std::string& key, Reader&& reader) {
    torch::serialize::InputArchive part;
    if (!archive.try_read(key, part)) throw std::runtime_error(fmt::format("{} has no '{}' entry", name, key));
    reader(part);
  }

  std::string name;
  torch::serialize::InputArchive archive;
  TrainConfig config;
};

/// The configuration the checkpoint at `path` was written with.
inline TrainConfig read_config(const std::filesystem::path& path) { return Opened(path, torch::kCPU).config; }

/// Refuses to continue the checkpoint at `path` (written with `saved`) under `wanted`, listing
/// every field that differs and what to do instead.
inline void require_same_config(const std::filesystem::path& path, const TrainConfig& saved, const TrainConfig& wanted) {
  const auto diff = saved.differences(wanted);
  if (diff.empty()) return;
  std::string msg = fmt::format("checkpoint '{}' was written with a different configuration:", path.string());
  for (const auto& d : diff) msg += "\n  " + d;
  throw std::runtime_error(msg + "\nrun the same command as the original run, adding --resume");
}

/// The log window as a tensor of 6 numbers (the 5 loss sums, then the step count).
inline torch::Tensor to_tensor(const LogWindow& w) {
  return torch::tensor({w.sum.D, w.sum.G_GAN, w.sum.NCE, w.sum.NCE_Y, w.sum.G, static_cast<double>(w.steps)},
                       torch::kFloat64);
}
inline LogWindow log_window_from_tensor(const torch::Tensor& t, const std::string& name) {
  auto v = t.to(torch::kCPU, torch::kFloat64).contiguous();
  if (v.numel() != 6) throw std::runtime_error(fmt::format("{}: log_window must hold 6 numbers, got {}", name, v.numel()));
  const double* p = v.data_ptr<double>();
  if (!(p[5] >= 0 && p[5] <= 1e15))  // a step count; NaN or a huge value must not reach the cast
    throw std::runtime_error(fmt::format("{}: log_window's step count must be in [0, 1e15] (got {})", name, p[5]));
  LogWindow w;
  w.sum = {p[0], p[1], p[2], p[3], p[4]};
  w.steps = static_cast<int64_t>(p[5]);
  return w;
}

/// Writes `trainer`'s state to `path` atomically: the archive goes to `path`.tmp, is fsync'ed,
/// renamed over `path`, and the folder is fsync'ed, so a killed process or a power loss leaves
/// either the previous checkpoint or the new one, never a torn file. A `.tmp` left by a killed
/// write is simply overwritten by the next save.
inline void save(const Trainer& trainer, const std::filesystem::path& path) {
  torch::serialize::OutputArchive archive;
  archive.write("config", c10::IValue(trainer.config().serialize()));
  archive.write("step", c10::IValue(trainer.step()));
  archive.write("log_window", to_tensor(trainer.log_window));
  archive.write("world_size", c10::IValue(static_cast<int64_t>(trainer.world())));  // docs/distributed.md
  archive.write("format", c10::IValue(kArchiveFormat));
  auto sub = [&](const std::string& key, const auto& writer) {
    torch::serialize::OutputArchive a;
    writer(a);
    archive.write(key, a);
  };
  sub("G", [&](auto& a) { trainer.G->save(a); });
  sub("D", [&](auto& a) { trainer.D->save(a); });
  sub("F", [&](auto& a) { trainer.F.module->save(a); });
  sub("opt_G", [&](auto& a) { trainer.opt_G->save(a); });
  sub("opt_D", [&](auto& a) { trainer.opt_D->save(a); });
  sub("opt_F", [&](auto& a) { trainer.opt_F->save(a); });
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  write_checkpoint_file(archive, tmp);  // a header with the archive's length and checksum, then the archive
  sync_to_disk(tmp, false);
  std::filesystem::rename(tmp, path);
  sync_to_disk(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."), true);
}

/// Restores into `trainer` everything `save` wrote; refuses a checkpoint of a different configuration.
inline void restore(Trainer& trainer, const std::filesystem::path& path) {
  Opened ckpt(path, trainer.device());
  require_same_config(path, ckpt.config, trainer.config());
  trainer.restore_step(read_archive_step(ckpt.archive, ckpt.config, ckpt.name));
  torch::Tensor window;
  trainer.log_window = ckpt.archive.try_read("log_window", window) ? log_window_from_tensor(window, ckpt.name) : LogWindow{};
  c10::IValue world;  // absent in checkpoints of one-process runs written before distributed training
  const int64_t w = !ckpt.archive.try_read("world_size", world) ? 1 : world.isInt() ? world.toInt() : -1;
  if (w < 1 || w > (1 << 20))
    throw std::runtime_error(fmt::format("{}: world_size must be in [1, 2^20], got {}", ckpt.name, w));
  trainer.restore_world(static_cast<int>(w));
  ckpt.read_part("G", [&](auto& a) { load_checked(*trainer.G, a, ckpt.name, "G"); });
  ckpt.read_part("D", [&](auto& a) { load_checked(*trainer.D, a, ckpt.name, "D"); });
  ckpt.read_part("F", [&](auto& a) { load_checked(*trainer.F.module, a, ckpt.name, "F"); });
  ckpt.read_part("opt_G", [&](auto& a) { trainer.opt_G->load(a); });
  ckpt.read_part("opt_D", [&](auto& a) { trainer.opt_D->load(a); });
  ckpt.read_part("opt_F", [&](auto& a) { trainer.opt_F->load(a); });
}

/// Rebuilds a trainer (networks + configuration) from a checkpoint with its generator loaded,
/// for translate/evaluate.
inline std::unique_ptr<Trainer> load_model(const std::filesystem::path& path, torch::Device device,
                                           const std::string& vgg_weights = "") {
  Opened ckpt(path, device);
  TrainConfig config = ckpt.config;
  // The VGG features only matter for training; translation needs the generator alone.
  if (config.features == FeatureKind::kVGG16 && vgg_weights.empty()) config.features = FeatureKind::kEncoder;
  auto trainer = std::make_unique<Trainer>(config, device, vgg_weights);
  ckpt.read_part("G", [&](auto& a) { load_checked(*trainer->G, a, ckpt.name, "G"); });
  return trainer;
}

/// `--checkpoint` may name the checkpoint or the run folder that holds it as ckpt.pt.
inline std::filesystem::path resolve(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return path;
  if (std::filesystem::is_regular_file(path / "ckpt.pt", ec)) return path / "ckpt.pt";
  bad_option("--checkpoint", "a ckpt.pt file or a run folder that holds one",
             fmt::format("'{}', a folder without ckpt.pt", path.string()));
}

}  // namespace trainer::checkpoint

// Checkpoint I/O: a Trainer's whole state (networks, optimiser states, step, log window and
// configuration) in one LibTorch archive, written atomically and fsync'ed, so that `--resume`
// continues bit-for-bit and a killed process or a power loss never leaves a torn checkpoint.
// A checkpoint comes from outside (the run folder, a download): everything read from it is checked.
#pragma once

#include "trainer.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <unistd.h>

namespace trainer::checkpoint {

/// Value of the archive's "format" entry.
inline const std::string kFormat = "patchgcl-trainer-1";

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

/// Opens a checkpoint archive; an unreadable file (truncated, not a checkpoint) gets an error naming it.
inline void open_archive(torch::serialize::InputArchive& archive, const std::filesystem::path& path,
                         torch::Device device) {
  try {
    archive.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("checkpoint '{}' cannot be read (truncated, or not written by "
                                         "patchgcl-trainer): {}", path.string(), e.what_without_backtrace()));
  }
}

/// The configuration the checkpoint at `path` was written with.
inline TrainConfig read_config(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(fmt::format("checkpoint '{}' does not exist", path.string()));
  torch::serialize::InputArchive archive;
  open_archive(archive, path, torch::kCPU);
  c10::IValue format, config;
  if (!archive.try_read("format", format) || !archive.try_read("config", config))
    throw std::runtime_error(fmt::format("'{}' is not a checkpoint of this trainer", path.string()));
  return TrainConfig::deserialize(config.toStringRef());
}

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
inline LogWindow log_window_from_tensor(const torch::Tensor& t) {
  auto v = t.to(torch::kCPU, torch::kFloat64).contiguous();
  if (v.numel() != 6) throw std::runtime_error(fmt::format("checkpoint: log_window must hold 6 numbers, got {}", v.numel()));
  const double* p = v.data_ptr<double>();
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
  archive.write("format", c10::IValue(kFormat));
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
  archive.save_to(tmp.string());
  sync_to_disk(tmp, false);
  std::filesystem::rename(tmp, path);
  sync_to_disk(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."), true);
}

/// Restores into `trainer` everything `save` wrote; refuses a checkpoint of a different configuration.
inline void restore(Trainer& trainer, const std::filesystem::path& path) {
  require_same_config(path, read_config(path), trainer.config());
  torch::serialize::InputArchive archive;
  open_archive(archive, path, trainer.device());
  c10::IValue step;
  archive.read("step", step);
  trainer.restore_step(step.toInt());
  torch::Tensor window;
  trainer.log_window = archive.try_read("log_window", window) ? log_window_from_tensor(window) : LogWindow{};
  c10::IValue world;  // absent in checkpoints of one-process runs written before distributed training
  const int64_t w = !archive.try_read("world_size", world) ? 1 : world.isInt() ? world.toInt() : -1;
  if (w < 1 || w > (1 << 20))
    throw std::runtime_error(fmt::format("checkpoint '{}': world_size must be in [1, 2^20], got {}", path.string(), w));
  trainer.restore_world(static_cast<int>(w));
  auto sub = [&](const std::string& key, const auto& reader) {
    torch::serialize::InputArchive a;
    archive.read(key, a);
    reader(a);
  };
  sub("G", [&](auto& a) { trainer.G->load(a); });
  sub("D", [&](auto& a) { trainer.D->load(a); });
  sub("F", [&](auto& a) { trainer.F.module->load(a); });
  sub("opt_G", [&](auto& a) { trainer.opt_G->load(a); });
  sub("opt_D", [&](auto& a) { trainer.opt_D->load(a); });
  sub("opt_F", [&](auto& a) { trainer.opt_F->load(a); });
}

/// Rebuilds a trainer (networks + configuration) from a checkpoint with its generator loaded,
/// for translate/evaluate.
inline std::unique_ptr<Trainer> load_model(const std::filesystem::path& path, torch::Device device,
                                           const std::string& vgg_weights = "") {
  TrainConfig config = read_config(path);
  // The VGG features only matter for training; translation needs the generator alone.
  if (config.features == FeatureKind::kVGG16 && vgg_weights.empty()) config.features = FeatureKind::kEncoder;
  auto trainer = std::make_unique<Trainer>(config, device, vgg_weights);
  torch::serialize::InputArchive archive, g;
  open_archive(archive, path, device);
  archive.read("G", g);
  trainer->G->load(g);
  return trainer;
}

}  // namespace trainer::checkpoint

// The run folder of `train`: the options that are not part of the training configuration (where
// to write, how often), and the folder's safety: created and proved writable before any work,
// locked against a second trainer, cleared of the temporaries a killed run left.
#pragma once

#include "trainer/nets/vgg16_weights.hpp"
#include "trainer/train/config.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace trainer {

struct RunOptions {
  std::filesystem::path run_dir = "runs/demo";
  bool resume = false;
  /// Resume when the run folder holds a checkpoint, start fresh when it does not: the same command
  /// serves the first start and every restart (torchrun --max_restarts, a job scheduler's requeue).
  bool auto_resume = false;
  std::string vgg_weights;
  int64_t log_every = 10;
  int64_t sample_every = 200;
  int64_t checkpoint_every = 200;
  /// Checkpoints of earlier steps kept in checkpoints/ (kept_checkpoints.hpp); 0: only ckpt.safetensors.
  int64_t keep_checkpoints = 0;
  int preview_count = 4;
  /// Distributed: start each gradient bucket's all-reduce during backward (false: after it).
  bool overlap_gradients = true;
  bool quiet = false;  // no progress line (tests)
};

/// Checks the options of `train` that are not part of the training configuration.
inline void validate_run_options(const TrainConfig& config, const RunOptions& run) {
  if (run.run_dir.empty()) bad_option("--run", "a folder", "''");
  if (run.auto_resume && run.resume)
    bad_option("--auto-resume", "given without --resume (it resumes by itself when the run folder holds a checkpoint)",
               "both");
  for (auto [option, value] : {std::pair<const char*, int64_t>{"--log-every", run.log_every},
                               {"--sample-every", run.sample_every},
                               {"--checkpoint-every", run.checkpoint_every}})
    if (value < 1) bad_option(option, "at least 1", std::to_string(value));
  if (run.keep_checkpoints < 0)
    bad_option("--keep-checkpoints", "at least 0 (0: keep only the latest, ckpt.safetensors)",
               std::to_string(run.keep_checkpoints));
  if (config.features == FeatureKind::kVGG16) {
    const std::string weights = vgg16_weights_or_default(run.vgg_weights);
    if (!std::filesystem::is_regular_file(weights))
      bad_option("--vgg-weights",
                 fmt::format("a VGG16 weight file with --features vgg16 ({} writes one)", kVGG16WeightsCommand),
                 fmt::format("'{}'{}, which does not exist", weights, run.vgg_weights.empty() ? " (the default)" : ""));
  }
}

/// An exclusive flock(2) on DIR/.lock for the lifetime of a run: a second trainer on the same
/// run folder is refused instead of interleaving its checkpoints and log with the first.
/// The kernel drops the lock when the process dies, kill -9 included.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir) {
    const auto path = dir / ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw std::runtime_error(
          fmt::format("--run '{}': cannot create {}: {}", dir.string(), path.string(), std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw std::runtime_error(fmt::format("--run '{}' is in use by another patchgcl-trainer process ({} is locked)",
                                           dir.string(), path.string()));
    }
  }
  ~RunLock() { ::close(fd_); }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

/// Creates the run folder and samples/ and proves them writable by creating and removing a file in
/// each, so an unwritable --run fails before any data is loaded or network built (not at the
/// first checkpoint).
inline void prepare_run_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const std::string expected = "a folder this process can create files in";
  std::error_code ec;
  fs::create_directories(dir / "samples", ec);
  if (ec) bad_option("--run", expected, fmt::format("'{}', which cannot be created: {}", dir.string(), ec.message()));
  for (const fs::path& sub : {dir, dir / "samples"}) {
    const auto probe = sub / ".write-probe.tmp";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) bad_option("--run", expected, fmt::format("'{}': {}", sub.string(), std::strerror(errno)));
    const bool wrote = ::write(fd, "x", 1) == 1;
    const int err = errno;
    ::close(fd);
    fs::remove(probe, ec);
    if (!wrote) bad_option("--run", expected, fmt::format("'{}': {}", sub.string(), std::strerror(err)));
  }
}

/// Removes the `*.tmp` files a killed run may have left in the run folder, samples/ and checkpoints/
/// (an interrupted checkpoint, log rewrite, index.html, sample grid or kept checkpoint). The finished files they were
/// to replace are never touched. Call with the RunLock held, so no live run's file is removed.
inline void remove_stale_temporaries(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const fs::path& sub : {dir, dir / "samples", dir / "checkpoints"})
    for (const auto& entry : fs::directory_iterator(sub, ec))
      if (entry.path().extension() == ".tmp" && entry.is_regular_file()) fs::remove(entry.path(), ec);
}

}  // namespace trainer

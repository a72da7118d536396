// `train --keep-checkpoints N`: besides ckpt.safetensors (the latest, for --resume), the run folder keeps
// checkpoints of earlier steps in checkpoints/step_XXXXXXXX.safetensors, so that `evaluate --run` can score
// each and name the best (papers report the best epoch, not the last).
//
// Bounded disk: at step t at most N files are kept, evenly spaced over the run so far: the
// multiples of s <= t, where s is the smallest --checkpoint-every x 2^k with t / s <= N. When
// the next multiple would make N + 1, s doubles and every other file goes. The set depends only
// on (t, --checkpoint-every, N), so a resumed or restarted run keeps the same files. A kept file
// is a hard link to the ckpt.safetensors just written (a copy where the file system has no hard links):
// no extra write, and the disk holds at most N + 1 checkpoints (N kept and ckpt.safetensors).
#pragma once

#include <patchgcl/detail/integer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace trainer::checkpoint {

/// The folder of the kept checkpoints inside a run folder.
inline std::filesystem::path kept_folder(const std::filesystem::path& run_dir) { return run_dir / "checkpoints"; }

inline std::filesystem::path kept_path(const std::filesystem::path& run_dir, int64_t step) {
  return kept_folder(run_dir) / fmt::format("step_{:08}.safetensors", step);
}

/// The spacing s of the kept checkpoints at `step` (see the top of this file); every >= 1, keep >= 1.
inline int64_t kept_stride(int64_t step, int64_t every, int64_t keep) {
  int64_t s = every;
  while (step / s > keep) s *= 2;
  return s;
}

/// The kept checkpoints of a run folder, (step, file) in step order; files of other names are ignored.
inline std::vector<std::pair<int64_t, std::filesystem::path>> list_kept(const std::filesystem::path& run_dir) {
  std::vector<std::pair<int64_t, std::filesystem::path>> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(kept_folder(run_dir), ec)) return out;
  static const std::regex name(R"(step_(\d{1,15})\.safetensors)");
  for (const auto& entry : std::filesystem::directory_iterator(kept_folder(run_dir))) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(file, m, name))
      out.emplace_back(patchgcl::detail::parse_integer<int64_t>("kept checkpoint step", m[1].str()), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// After `ckpt` (holding step `step`) was written: keeps it when its step belongs to the kept set and
/// removes the kept files that no longer do. `keep` 0 keeps nothing (and removes nothing).
inline void keep_checkpoint(const std::filesystem::path& run_dir, const std::filesystem::path& ckpt, int64_t step,
                            int64_t every, int64_t keep) {
  namespace fs = std::filesystem;
  if (keep < 1 || step < 1) return;
  const int64_t stride = kept_stride(step, every, keep);
  fs::create_directories(kept_folder(run_dir));
  const fs::path target = kept_path(run_dir, step);
  if (step % stride == 0 && !fs::exists(target)) {
    const fs::path tmp = target.string() + ".tmp";
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_hard_link(ckpt, tmp, ec);
    if (ec) fs::copy_file(ckpt, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, target);
  }
  for (const auto& [kept_step, file] : list_kept(run_dir))
    if (kept_step % stride != 0 || kept_step > step) fs::remove(file);
}

}  // namespace trainer::checkpoint

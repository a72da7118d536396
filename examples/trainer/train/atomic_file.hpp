// Files that a killed process or a power loss never leaves torn: written to `path`.tmp, fsync'ed,
// renamed over `path`, then the folder fsync'ed. A reader sees the previous file or the new one.
// Checkpoints (checkpoint.hpp), generator.safetensors (generator_export.hpp) and the checkpoint
// scores (report/checkpoint_scores.hpp) are written this way.
#pragma once

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace trainer {

/// fsync(2) of a file or folder, so that what was written (or renamed into a folder) survives a
/// power loss, not only a killed process. Folders that cannot be synced (EINVAL, EROFS on some
/// file systems) are skipped; any other failure throws, naming the path.
inline void sync_to_disk(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0) | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error(fmt::format("cannot open '{}' to sync it: {}", path.string(), std::strerror(errno)));
  const int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    throw std::runtime_error(fmt::format("cannot sync '{}' to disk: {}", path.string(), std::strerror(err)));
}

/// Writes `bytes` to `path` atomically (see the top of this file). A `.tmp` left by a killed write
/// is overwritten by the next one.
inline void write_file_atomically(const std::filesystem::path& path, const std::string& bytes) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write '{}': {}", tmp.string(), std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      throw std::runtime_error(fmt::format("writing '{}' failed: {}", tmp.string(), std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  const int rc = ::fsync(fd), err = errno;
  if (::close(fd) != 0 || rc != 0)
    throw std::runtime_error(
        fmt::format("cannot sync '{}' to disk: {}", tmp.string(), std::strerror(rc != 0 ? err : errno)));
  std::filesystem::rename(tmp, path);
  sync_to_disk(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."), true);
}

}  // namespace trainer

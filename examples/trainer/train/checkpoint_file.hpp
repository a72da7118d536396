// The checkpoint file: LibTorch's archive inside a small container that carries a checksum of
// every byte of it, so that corruption (a flipped bit on disk, a bad copy, an edited file) is
// refused with a message instead of silently changing a translation or a resumed run.
//
//   patchgcl-trainer checkpoint 2\n
//   bytes <N> checksum <16 hex digits>\n
//   <N bytes: the torch::serialize archive (a zip)>
//
// The checksum is `checksum64` below: 64-bit FNV-1a over little-endian 64-bit words (then the
// tail bytes and the length), with a final avalanche. It detects corruption, not tampering: anyone
// who can write the file can recompute it. LibTorch 1.13 does not check the zip's own CRCs.
// Files without the header (format 1, written before the checksum existed) still load, with a
// warning that they cannot be verified.
#pragma once

#include "trainer/train/config_text.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

namespace trainer {

inline constexpr char kCheckpointMagic[] = "patchgcl-trainer checkpoint 2\n";
/// Value of the archive's "format" entry.
inline const std::string kArchiveFormat = "patchgcl-trainer-1";

/// 64-bit checksum of `size` bytes (see the file comment).
inline uint64_t checksum64(const void* data, size_t size) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word = 0;
    for (int b = 7; b >= 0; --b) word = (word << 8) | p[i + static_cast<size_t>(b)];
    h = (h ^ word) * kPrime;
  }
  for (; i < size; ++i) h = (h ^ p[i]) * kPrime;
  h = (h ^ static_cast<uint64_t>(size)) * kPrime;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

inline std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

/// Serialises `archive` and writes container + archive to `path` (no fsync, no rename: the caller's
/// atomic-write protocol does that).
inline void write_checkpoint_file(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  std::string bytes;
  archive.save_to([&](const void* data, size_t n) -> size_t {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << kCheckpointMagic << fmt::format("bytes {} checksum {}\n", bytes.size(), hex64(checksum64(bytes.data(), bytes.size())));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write checkpoint '{}': {}", path.string(), std::strerror(errno)));
}

/// Checks a whole checkpoint file's bytes (see read_checkpoint_bytes) and returns the archive part.
inline std::string verify_checkpoint_bytes(std::string data, const std::string& name);

/// Reads a checkpoint file written by write_checkpoint_file (or an unverifiable format-1 archive) and
/// returns the archive's bytes after checking the length and the checksum; every failure names the file.
inline std::string read_checkpoint_bytes(const std::filesystem::path& path) {
  const std::string name = fmt::format("checkpoint '{}'", path.string());
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw std::runtime_error(name + " is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(name + " does not exist or cannot be opened");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return verify_checkpoint_bytes(std::move(data), name);
}

inline std::string verify_checkpoint_bytes(std::string data, const std::string& name) {
  const size_t magic = sizeof(kCheckpointMagic) - 1;
  if (data.compare(0, magic, kCheckpointMagic) != 0) {
    if (data.compare(0, 2, "PK") == 0) {  // format 1: the bare zip archive
      std::cerr << fmt::format("warning: {} has no checksum (written by an older patchgcl-trainer); it is loaded "
                               "unverified\n", name);
      return data;
    }
    throw std::runtime_error(fmt::format("{} is not a patchgcl-trainer checkpoint (no '{}' header)", name,
                                         std::string(kCheckpointMagic, magic - 1)));
  }
  const size_t eol = data.find('\n', magic);
  const std::string line = data.substr(magic, eol == std::string::npos ? 64 : eol - magic);
  unsigned long long declared = 0;
  char hex[17] = {0};
  int consumed = 0;
  if (eol == std::string::npos || eol - magic > 64 ||
      std::sscanf(line.c_str(), "bytes %llu checksum %16[0-9a-f]%n", &declared, hex, &consumed) != 2 ||
      static_cast<size_t>(consumed) != line.size() || std::strlen(hex) != 16)
    throw std::runtime_error(
        fmt::format("{} has a damaged header (expected 'bytes N checksum HEX', got '{}')", name, line.substr(0, 64)));
  const size_t start = eol + 1, actual = data.size() - start;
  if (declared != actual)
    throw std::runtime_error(fmt::format("{} is truncated or has trailing bytes: its header declares {} bytes of "
                                         "archive, the file holds {}", name, declared, actual));
  const std::string computed = hex64(checksum64(data.data() + start, actual));
  if (computed != hex)
    throw std::runtime_error(fmt::format("{} is corrupt: the checksum of its contents is {}, the header says {} (the "
                                         "file was changed after it was written; use an intact copy)", name, computed, hex));
  return data.substr(start);
}

/// Opens archive bytes (from read_checkpoint_bytes); LibTorch's errors become one that names the file.
inline void load_archive_bytes(torch::serialize::InputArchive& archive, const std::string& bytes,
                               const std::string& name, torch::Device device) {
  try {
    archive.load_from(bytes.data(), bytes.size(), device);
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("{} cannot be read (truncated, or not written by patchgcl-trainer): {}", name,
                                         e.what_without_backtrace()));
  }
}

/// The configuration of an opened checkpoint archive, read and validated like the command line
/// (parse_config_text), after checking that the entries have the types the trainer writes.
inline TrainConfig read_archive_config(torch::serialize::InputArchive& archive, const std::string& name) {
  c10::IValue format, config;
  if (!archive.try_read("format", format) || !archive.try_read("config", config))
    throw std::runtime_error(name + " is not a checkpoint of this trainer (no 'format' and 'config' entries)");
  if (!format.isString() || format.toStringRef() != kArchiveFormat)
    throw std::runtime_error(fmt::format("{}: entry 'format' must be the text '{}' (got {})", name, kArchiveFormat,
                                         format.isString() ? "'" + format.toStringRef().substr(0, 64) + "'"
                                                           : "a " + format.tagKind()));
  if (!config.isString())
    throw std::runtime_error(fmt::format("{}: entry 'config' must be text (got a {})", name, config.tagKind()));
  return parse_config_text(config.toStringRef(), name);
}

/// The step counter of an opened checkpoint archive: an integer in [0, config.steps].
inline int64_t read_archive_step(torch::serialize::InputArchive& archive, const TrainConfig& config,
                                 const std::string& name) {
  c10::IValue step;
  if (!archive.try_read("step", step)) throw std::runtime_error(name + " has no 'step' entry");
  if (!step.isInt())
    throw std::runtime_error(fmt::format("{}: entry 'step' must be an integer (got a {})", name, step.tagKind()));
  const int64_t value = step.toInt();
  if (value < 0 || value > config.steps)
    throw std::runtime_error(fmt::format("{}: entry 'step' must be in [0, {}] (--steps) (got {})", name, config.steps, value));
  return value;
}

/// Loads `module`'s parameters and buffers from `archive` and checks that each one kept the shape
/// and dtype it had, and is finite: LibTorch's Module::load replaces a tensor by whatever the
/// archive holds, so a crafted file could otherwise change a layer's shape or smuggle in NaN.
inline void load_checked(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& name,
                         const std::string& part) {
  std::vector<std::pair<std::string, torch::Tensor>> before;
  for (const auto& p : module.named_parameters()) before.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) before.emplace_back(b.key(), b.value());
  std::vector<std::vector<int64_t>> shapes;
  std::vector<c10::ScalarType> dtypes;
  for (const auto& [key, t] : before) shapes.push_back(t.sizes().vec()), dtypes.push_back(t.scalar_type());
  try {
    module.load(archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("{}: {} cannot be loaded: {}", name, part, e.what_without_backtrace()));
  }
  size_t i = 0;
  const auto check = [&](const std::string& key, const torch::Tensor& t) {
    const bool same = t.sizes().vec() == shapes[i] && t.scalar_type() == dtypes[i];
    if (!same)
      throw std::runtime_error(fmt::format("{}: {} tensor '{}' has shape {} and dtype {}, expected {} and {}", name, part,
                                           key, c10::str(t.sizes()), c10::toString(t.scalar_type()),
                                           c10::str(c10::IntArrayRef(shapes[i])), c10::toString(dtypes[i])));
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw std::runtime_error(fmt::format("{}: {} tensor '{}' contains NaN or Inf", name, part, key));
    ++i;
  };
  for (const auto& p : module.named_parameters()) check(p.key(), p.value());
  for (const auto& b : module.named_buffers()) check(b.key(), b.value());
}

}  // namespace trainer

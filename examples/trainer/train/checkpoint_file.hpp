// The checkpoint file: a safetensors file (the format of the `safetensors` Python package, read and
// written by the library's io/safetensors_format.hpp and io/safetensors.hpp), so that a checkpoint
// holds data only: no code, nothing a parser of LibTorch's TorchScript archives could trip over.
//
//   tensors      G.<name>, D.<name>, F.<name>      parameters and buffers of the networks
//                opt_G.<i>.step / .exp_avg / .exp_avg_sq [/ .max_exp_avg_sq]   Adam's state of
//                opt_D.<i>..., opt_F.<i>...        the i-th parameter of the optimiser's groups
//   __metadata__ format           kCheckpointFormat
//                config           the configuration (TrainConfig::serialize, config_text.hpp)
//                step             steps done
//                world_size       processes of the run that wrote it
//                log_window       the 5 loss sums and the step count since the last log line
//                data_checksum    XXH3-64 (Debian's libxxhash) of the data section, 16 hex digits
//                header_checksum  XXH3-64 of the header's contents (checkpoint_header_digest)
//
// What is checked before anything is used (every failure names the file and the field):
// the safetensors rules of the library's reader (header length, JSON schema, dtypes, shapes, offsets
// that tile the data section); the metadata keys, exactly those above; the format tag; both
// checksums; tensor names of the known groups only. checkpoint.hpp then checks the values against
// the networks being built. The checksums detect corruption (a flipped bit, a bad copy, a file cut
// short), not tampering: anyone who can write the file can recompute them, which is why every value
// is also validated as if it came from the command line.
//
// Checkpoints of earlier versions (LibTorch archives: a zip, or the zip inside a container starting
// "patchgcl-trainer checkpoint 2") are refused with a message saying so: they are no longer read.
#pragma once

#include "trainer/train/config_text.hpp"

#include <patchgcl/io/safetensors.hpp>

#include <fmt/format.h>
#include <torch/torch.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

/// The file name of the latest checkpoint in a run folder.
inline constexpr char kCheckpointFileName[] = "ckpt.safetensors";
/// Value of the metadata entry "format".
inline constexpr char kCheckpointFormat[] = "patchgcl-trainer-safetensors-1";
/// The first line of the container of the previous format (a LibTorch archive behind a checksum).
inline constexpr char kOldCheckpointMagic[] = "patchgcl-trainer checkpoint 2\n";

/// The metadata keys a checkpoint holds, all required.
inline const std::vector<std::string>& checkpoint_metadata_keys() {
  static const std::vector<std::string> keys = {"format",     "config",        "step",           "world_size",
                                                "log_window", "data_checksum", "header_checksum"};
  return keys;
}
/// The groups a tensor name may start with ("G." ...).
inline const std::vector<std::string>& checkpoint_tensor_groups() {
  static const std::vector<std::string> groups = {"G.", "D.", "F.", "opt_G.", "opt_D.", "opt_F."};
  return groups;
}

inline std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

/// XXH3-64 of the header's contents, in a canonical form independent of the JSON's layout: each
/// tensor (name, dtype, shape, offsets) in name order, then each metadata entry but the two checksums
/// in key order, every string preceded by its length. A bit flip that leaves the JSON valid (a digit of
/// `step`, a letter of a dtype) changes it.
inline uint64_t checkpoint_header_digest(const patchgcl::io::detail::StContents& contents) {
  std::string text;
  const auto str = [&](const std::string& s) { text += fmt::format("{}:{};", s.size(), s); };
  std::vector<const patchgcl::io::detail::StTensor*> tensors;
  for (const auto& t : contents.tensors) tensors.push_back(&t);
  std::sort(tensors.begin(), tensors.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* t : tensors) {
    text += "T";
    str(t->name);
    str(patchgcl::io::detail::st_code(t->dtype));
    for (const int64_t d : t->shape) text += fmt::format("{},", d);
    text += fmt::format(";{},{}\n", t->begin, t->end);
  }
  std::map<std::string, std::string> metadata(contents.metadata.begin(), contents.metadata.end());
  for (const auto& [key, value] : metadata) {
    if (key == "data_checksum" || key == "header_checksum") continue;
    text += "M";
    str(key);
    str(value);
    text += "\n";
  }
  return XXH3_64bits(text.data(), text.size());
}

/// The bytes of a checkpoint file holding `tensors` and `metadata` (every key of
/// checkpoint_metadata_keys but the two checksums, which are computed here).
inline std::string checkpoint_bytes(const std::map<std::string, torch::Tensor>& tensors,
                                    std::map<std::string, std::string> metadata) {
  // Written twice: once to learn the layout (offsets, data section) the checksums cover, then with
  // them. The metadata does not change the tensors' order or offsets, so both have the same data.
  std::string bytes = patchgcl::io::safetensors_bytes(tensors, metadata);
  {
    const auto parsed = patchgcl::io::detail::parse_safetensors_bytes(bytes.data(), bytes.size(), "<checkpoint>");
    const uint64_t n = patchgcl::io::detail::st_header_length(bytes.data(), bytes.size(), "<checkpoint>");
    metadata["data_checksum"] = hex64(XXH3_64bits(bytes.data() + 8 + n, bytes.size() - 8 - n));
    metadata["header_checksum"] = hex64(checkpoint_header_digest(parsed));
  }
  bytes.clear();
  bytes.shrink_to_fit();
  return patchgcl::io::safetensors_bytes(tensors, metadata);
}

/// A checkpoint file's bytes, parsed and verified (see the top of this file). Tensors are read on
/// demand (tensor()); `used()` records which were, so that a file holding more than its reader
/// wants is refused (require_all_used()). Not copyable: the parsed table points into `bytes`.
class CheckpointFile {
 public:
  using StTensor = patchgcl::io::detail::StTensor;

  /// `name` names the file in errors ("checkpoint 'run/ckpt.safetensors'"). `verify_checksums`
  /// false is for the fuzz target only: a file as if re-signed after an edit, so that the checks
  /// behind the checksums are reached.
  CheckpointFile(std::string bytes, std::string name, bool verify_checksums = true)
      : bytes_(std::move(bytes)), name_(std::move(name)) {
    refuse_old_format();
    try {
      contents_ = patchgcl::io::detail::parse_safetensors_bytes(bytes_.data(), bytes_.size(), name_);
    } catch (const patchgcl::io::TensorFileError& e) {
      // "read_safetensors: '<name>', field 'F': problem" -> "<name>: field 'F': problem"
      const std::string what = e.what(), prefix = "read_safetensors: '" + e.path() + "', ";
      throw std::runtime_error(
          fmt::format("{} is damaged (cut short, or changed after it was written) or not a "
                      "checkpoint (a safetensors file): {}",
                      name_, what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what));
    }
    for (const auto& [key, value] : contents_.metadata) metadata_[key] = value;
    const auto& keys = checkpoint_metadata_keys();
    for (const auto& [key, value] : contents_.metadata)
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        throw std::runtime_error(
            fmt::format("{}: __metadata__ has the unknown key '{}' (expected only format, config, "
                        "step, world_size, log_window, data_checksum and header_checksum)",
                        name_, patchgcl::io::detail::st_printable(key, 64)));
    if (!metadata_.count("format"))
      throw std::runtime_error(
          fmt::format("{} is a safetensors file, but not a checkpoint of patchgcl-trainer (its "
                      "__metadata__ has no 'format' entry)",
                      name_));
    if (metadata_.at("format") != kCheckpointFormat)
      throw std::runtime_error(fmt::format("{}: __metadata__ 'format' must be '{}' (got '{}')", name_,
                                           kCheckpointFormat,
                                           patchgcl::io::detail::st_printable(metadata_.at("format"), 64)));
    for (const auto& key : checkpoint_metadata_keys())
      if (!metadata_.count(key))
        throw std::runtime_error(fmt::format("{}: __metadata__ lacks the entry '{}'", name_, key));
    const uint64_t n = patchgcl::io::detail::st_header_length(bytes_.data(), bytes_.size(), name_);
    if (verify_checksums) {
      verify_checksum("data_checksum", XXH3_64bits(bytes_.data() + 8 + n, bytes_.size() - 8 - n), "data section");
      verify_checksum("header_checksum", checkpoint_header_digest(contents_), "header (tensor table and metadata)");
    }
    for (const auto& t : contents_.tensors) {
      const bool known = std::any_of(checkpoint_tensor_groups().begin(), checkpoint_tensor_groups().end(),
                                     [&](const std::string& g) { return t.name.rfind(g, 0) == 0; });
      if (!known)
        throw std::runtime_error(
            fmt::format("{}: tensor '{}' belongs to none of the groups G, D, F, opt_G, opt_D, opt_F", name_,
                        patchgcl::io::detail::st_printable(t.name, 64)));
      tensors_[t.name] = &t;
    }
  }
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;

  const std::string& name() const { return name_; }
  const std::string& meta(const std::string& key) const { return metadata_.at(key); }
  bool has(const std::string& tensor) const { return tensors_.count(tensor) != 0; }

  /// The tensor `key` as a CPU tensor after checking that it exists and has `dtype` and `shape`
  /// and, for floating-point data, only finite values; `what` says what it is in errors.
  torch::Tensor tensor(const std::string& key, c10::ScalarType dtype, c10::IntArrayRef shape) {
    auto it = tensors_.find(key);
    if (it == tensors_.end()) throw std::runtime_error(fmt::format("{}: tensor '{}' is missing", name_, key));
    const StTensor& t = *it->second;
    const c10::ScalarType stored = patchgcl::io::detail::scalar_type_of(t.dtype);
    if (stored != dtype || !c10::IntArrayRef(t.shape).equals(shape))
      throw std::runtime_error(fmt::format("{}: tensor '{}' has shape {} and dtype {}, expected {} and {}", name_, key,
                                           c10::str(c10::IntArrayRef(t.shape)), c10::toString(stored), c10::str(shape),
                                           c10::toString(dtype)));
    auto out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (t.end > t.begin) std::memcpy(out.data_ptr(), t.data, static_cast<size_t>(t.end - t.begin));
    if (out.is_floating_point() && !torch::isfinite(out).all().item<bool>())
      throw std::runtime_error(fmt::format("{}: tensor '{}' contains NaN or Inf", name_, key));
    used_.insert(key);
    return out;
  }

  /// Refuses a file with tensors no reader asked for (a network with more layers than the
  /// configuration builds, a state for a parameter that does not exist).
  void require_all_used() const {
    for (const auto& t : contents_.tensors)
      if (!used_.count(t.name))
        throw std::runtime_error(fmt::format("{}: tensor '{}' belongs to nothing this configuration builds", name_,
                                             patchgcl::io::detail::st_printable(t.name, 64)));
  }

 private:
  void refuse_old_format() const {
    const bool container = bytes_.compare(0, sizeof(kOldCheckpointMagic) - 1, kOldCheckpointMagic) == 0;
    // A zip's local file header; a safetensors file has '{' at byte 8, a zip never does (compression method).
    const bool zip =
        bytes_.compare(0, 4, std::string("PK\x03\x04", 4)) == 0 && !(bytes_.size() > 8 && bytes_[8] == '{');
    if (container || zip)
      throw std::runtime_error(fmt::format(
          "{} is a checkpoint of the old format (a LibTorch archive, {}), which is no longer read: such an archive can "
          "hold code, and LibTorch's parser of it crashes on crafted files. Checkpoints are safetensors files now "
          "({}). Train again with this version (the same command, a new --run folder), or use the checkpoint with the "
          "patchgcl-trainer release that wrote it (docs/trainer.md, \"Checkpoints and resume\")",
          name_, container ? "behind the 'patchgcl-trainer checkpoint 2' header" : "a zip file", kCheckpointFileName));
  }

  void verify_checksum(const std::string& key, uint64_t computed, const std::string& what) const {
    const std::string& stored = metadata_.at(key);
    if (stored.size() != 16 || stored.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw std::runtime_error(fmt::format("{}: __metadata__ '{}' must be 16 lowercase hex digits (got '{}')", name_,
                                           key, patchgcl::io::detail::st_printable(stored, 64)));
    if (stored != hex64(computed))
      throw std::runtime_error(
          fmt::format("{} is corrupt: the XXH3-64 of its {} is {}, __metadata__ '{}' says {} (the "
                      "file was changed after it was written; use an intact copy)",
                      name_, what, hex64(computed), key, stored));
  }

  std::string bytes_;
  std::string name_;
  patchgcl::io::detail::StContents contents_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, const StTensor*> tensors_;
  std::set<std::string> used_;
};

/// The bytes of the checkpoint file at `path`; `name` names it in errors.
inline std::string read_checkpoint_bytes(const std::filesystem::path& path, const std::string& name) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw std::runtime_error(name + " is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(name + " does not exist or cannot be opened");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(name + " cannot be read");
  return data;
}

/// The configuration of a verified checkpoint, read and validated like the command line.
inline TrainConfig read_checkpoint_config(const CheckpointFile& file) {
  return parse_config_text(file.meta("config"), file.name());
}

/// An integer metadata entry in [lo, hi].
inline int64_t read_checkpoint_integer(const CheckpointFile& file, const std::string& key, int64_t lo, int64_t hi,
                                       const std::string& range) {
  const int64_t value = detail::parse_integer_field<int64_t>(key, file.meta(key), file.name() + ": __metadata__");
  if (value < lo || value > hi)
    throw std::runtime_error(
        fmt::format("{}: __metadata__ '{}' must be in {} (got {})", file.name(), key, range, value));
  return value;
}

/// The step counter: an integer in [0, config.steps].
inline int64_t read_checkpoint_step(const CheckpointFile& file, const TrainConfig& config) {
  return read_checkpoint_integer(file, "step", 0, config.steps, fmt::format("[0, {}] (--steps)", config.steps));
}

}  // namespace trainer

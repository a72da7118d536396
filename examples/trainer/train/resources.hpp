// Bounded resources: what a run will need (memory of a training step, of the networks and of the
// images held in memory), what the machine has (memory and CPUs available to this process,
// cgroup limits included), and the checks that refuse a run before it allocates.
//
// The activation estimate is a per-pixel model of the saved tensors of one CUT step (G on [X; Y],
// the encoder features of both terms, D three times), in floats per pixel of one image:
//   kG * ngf + kBlock * ngf * n_blocks + kD * ndf
// fitted to the peak resident memory of real steps on this machine (LibTorch 1.13, CPU, 64-192 px,
// ngf 16-32, 3-9 blocks, batch 1-2), times 1.25 plus 64 MB: it over-estimates the measured steps
// by 5-50 %, never under (the test "The memory estimate is above a measured training step and
// within twice of it" pins that). Networks with Adam cost 16 bytes a parameter
// (weights, gradients, two moments).
#pragma once

#include "trainer/train/config.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>

namespace trainer {

struct MemoryEstimate {
  double activations = 0;  // bytes saved for the backward pass of one step
  double networks = 0;     // parameters, gradients and Adam moments
  double images = 0;       // the dataset as 8-bit RGB in memory
  double total() const { return activations + networks + images; }
};

/// Parameters of G (CUT's ResNet generator), from the layer shapes of generator.hpp.
inline double generator_parameters(const TrainConfig& c) {
  const double g = static_cast<double>(c.ngf), n = static_cast<double>(c.n_blocks);
  return 3 * g * 49 + g + g * 2 * g * 9 + 2 * g + 2 * g * 4 * g * 9 + 4 * g + n * 2 * (4 * g * 4 * g * 9 + 4 * g) +
         4 * g * 2 * g * 9 + 2 * g + 2 * g * g * 9 + g + g * 3 * 49 + 3;
}
/// Parameters of D (70x70 PatchGAN, 3 layers), from discriminator.hpp.
inline double discriminator_parameters(const TrainConfig& c) {
  const double d = static_cast<double>(c.ndf);
  return 3 * d * 16 + d + d * 2 * d * 16 + 2 * d + 2 * d * 4 * d * 16 + 4 * d + 4 * d * 8 * d * 16 + 8 * d +
         8 * d * 16 + 1;
}
/// G, D and the contrastive heads (two 256-wide layers per feature layer, at most five layers).
inline double parameter_count(const TrainConfig& c) {
  const double heads = 5 * (4 * static_cast<double>(c.ngf) * 256 + 256 + 256 * 256 + 256);
  return generator_parameters(c) + discriminator_parameters(c) + heads;
}

inline MemoryEstimate estimate_training_memory(const TrainConfig& c, int64_t folder_images = 0) {
  constexpr double kG = 130, kBlock = 7, kD = 30;
  const double side = static_cast<double>(c.synthetic_size_or_crop());
  const double per_pixel = kG * static_cast<double>(c.ngf) + kBlock * static_cast<double>(c.ngf * c.n_blocks) +
                           kD * static_cast<double>(c.ndf);
  MemoryEstimate m;
  m.activations = 1.25 * 4.0 * per_pixel * side * side * static_cast<double>(c.batch_size) + 64e6;
  m.networks = 16.0 * parameter_count(c);
  if (c.data.root == kSyntheticData) {
    const double s = static_cast<double>(c.data.synthetic_size);
    m.images = 2.0 * static_cast<double>(c.data.synthetic_count) * s * s * 3;
  } else if (!c.data.single_image) {
    const double s = static_cast<double>(c.data.load_size);
    m.images = static_cast<double>(folder_images) * s * s * 3;
  }
  return m;
}

/// Memory of translating one `width` x `height` image (G forward without gradients: the widest
/// full-resolution activations, a few at a time) plus G's weights.
inline double estimate_translation_memory(const TrainConfig& c, int64_t width, int64_t height) {
  const double g = static_cast<double>(c.ngf);
  return 4.0 * 8 * g * static_cast<double>(width) * static_cast<double>(height) + 4.0 * parameter_count(c);
}

/// "1.2 GB", "640 MB", "3.1 TB" (3 significant digits at most).
inline std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000 && u < 6) bytes /= 1000, ++u;
  return fmt::format("{:.3g} {}", bytes, units[u]);
}

namespace detail {
inline double read_number_file(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v) || v == "max") return -1;
  try {
    return std::stod(v);
  } catch (const std::exception&) {
    return -1;
  }
}
}  // namespace detail

/// Memory this process can still allocate, in bytes: MemAvailable, lowered to the cgroup's limit
/// minus its usage when the process runs in a limited cgroup (v2 or v1). -1 when unknown.
inline double available_memory() {
  double available = -1;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    double kb = 0;
    std::string unit;
    meminfo >> kb >> unit;
    if (key == "MemAvailable:") available = kb * 1024;
  }
  const double limit2 = detail::read_number_file("/sys/fs/cgroup/memory.max");
  const double used2 = detail::read_number_file("/sys/fs/cgroup/memory.current");
  if (limit2 > 0 && used2 >= 0) available = available < 0 ? limit2 - used2 : std::min(available, limit2 - used2);
  const double limit1 = detail::read_number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  const double used1 = detail::read_number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  if (limit1 > 0 && limit1 < 1e18 && used1 >= 0)
    available = available < 0 ? limit1 - used1 : std::min(available, limit1 - used1);
  return available;
}

/// CPUs this process may run on: its affinity mask, lowered to a cgroup CPU quota (cpu.max).
inline int available_cpus() {
  int cpus = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::ifstream quota("/sys/fs/cgroup/cpu.max");
  std::string max;
  double period = 0;
  if (quota >> max >> period && max != "max" && period > 0) {
    try {
      cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(std::stod(max) / period))));
    } catch (const std::exception&) {
    }
  }
  return cpus;
}

/// Refuses a training configuration whose estimate exceeds `available` bytes (callers pass
/// available_memory(); a negative value, unknown, skips the check). The option named is the one furthest above its
/// default among those the largest part of the estimate grows with.
inline void check_training_memory(const TrainConfig& c, int64_t folder_images, double available) {
  if (available < 0) return;
  const MemoryEstimate m = estimate_training_memory(c, folder_images);
  if (m.total() <= available) return;
  const bool synthetic = c.data.root == kSyntheticData;
  const std::string side_option = synthetic ? "--synthetic-size" : "--crop-size";
  const double side_default = synthetic ? 64 : 256;
  std::string option;
  int64_t value = 0;
  auto consider = [&, best = -1.0](const std::string& name, int64_t v, double ratio) mutable {
    if (ratio > best) best = ratio, option = name, value = v;
  };
  if (m.images >= m.activations && m.images >= m.networks) {
    if (synthetic) {
      consider("--synthetic-count", c.data.synthetic_count, c.data.synthetic_count / 400.0);
      consider("--synthetic-size", c.data.synthetic_size, std::pow(c.data.synthetic_size / 64.0, 2));
    } else {
      consider("--load-size", c.data.load_size, std::pow(c.data.load_size / 286.0, 2));
    }
  } else if (m.networks >= m.activations) {
    consider("--ngf", c.ngf, std::pow(c.ngf / 64.0, 2));
    consider("--n-blocks", c.n_blocks, c.n_blocks / 9.0);
    consider("--ndf", c.ndf, std::pow(c.ndf / 64.0, 2));
  } else {
    const double side = static_cast<double>(c.synthetic_size_or_crop());
    consider(side_option, c.synthetic_size_or_crop(), std::pow(side / side_default, 2));
    consider("--batch-size", c.batch_size, c.batch_size);
    consider("--ngf", c.ngf, c.ngf / 64.0);
    consider("--n-blocks", c.n_blocks, c.n_blocks / 9.0);
    consider("--ndf", c.ndf, c.ndf / 64.0);
  }
  bad_option(
      option,
      fmt::format("small enough for the memory available: with {} {}, --batch-size {}, --ngf {}, --n-blocks {}, "
                  "--ndf {} a run needs about {} (training step {}, networks and Adam {}, images {}), and {} are "
                  "available",
                  side_option, c.synthetic_size_or_crop(), c.batch_size, c.ngf, c.n_blocks, c.ndf,
                  format_bytes(m.total()), format_bytes(m.activations), format_bytes(m.networks),
                  format_bytes(m.images), format_bytes(available)),
      std::to_string(value));
}

}  // namespace trainer

// What every subcommand shares: the options before the subcommand (device, threads, image size
// limit), the command table's row, and the --json output of the scoring commands.
#pragma once

#include "trainer/data/image_decode.hpp"
#include "trainer/train/config.hpp"
#include "trainer/train/resources.hpp"

#include <patchgcl/blas_kernels.hpp>
#include <patchgcl/threads.hpp>

#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>

namespace trainer {

inline torch::Device parse_device(const std::string& name) {
  torch::Device device(name);  // throws c10::Error on a malformed name
  if (device.is_cuda() && !torch::cuda::is_available())
    throw std::runtime_error(
        fmt::format("--device {} requested but CUDA is not available in this LibTorch build/machine", name));
  return device;
}

namespace commands {

/// The options given before the subcommand: `patchgcl-trainer --threads 2 train ...`.
struct GlobalOptions {
  std::string device = "cpu";
  int threads = 0;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

inline void add_global_options(CLI::App& app, GlobalOptions& o) {
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", o.threads,
                 "CPU threads for LibTorch and OpenBLAS (0: their defaults; at most the CPUs available)");
  app.add_option("--max-image-pixels", o.max_image_pixels,
                 "larger images (width x height, from the file's header) are skipped with a warning")
      ->capture_default_str();
}

/// Checks the global options and applies them to this process.
inline void apply_global_options(GlobalOptions o) {
  if (o.threads < 0) bad_option("--threads", "at least 0 (0: LibTorch's default)", std::to_string(o.threads));
  if (o.threads > available_cpus()) {
    std::cerr << fmt::format("warning: --threads {} is more than the {} CPU(s) available to this process; using {}\n",
                             o.threads, available_cpus(), available_cpus());
    o.threads = available_cpus();
  }
  // LibTorch's pool and, where Debian's LibTorch (BLAS_INFO=generic) leaves it alone, OpenBLAS's.
  if (o.threads > 0) patchgcl::set_num_threads(o.threads);
  // An OpenBLAS older than the CPU runs its generic SSE3 kernels, several times slower
  // (include/patchgcl/blas_kernels.hpp); on the CPU, say so and what to set.
  if (o.device.rfind("cpu", 0) == 0) {
    if (const auto advice = patchgcl::blas_kernel_advice(); !advice.empty()) std::cerr << "warning: " << advice << "\n";
  }
  if (o.max_image_pixels < 1) bad_option("--max-image-pixels", "at least 1", std::to_string(o.max_image_pixels));
  decode_limits().max_pixels = o.max_image_pixels;
}

/// One row of the command table: a subcommand and what running it does once it was parsed. `run`
/// returns the process's exit status.
struct Command {
  CLI::App* app = nullptr;
  std::function<int(const GlobalOptions&)> run;
};

/// --json FILE of `evaluate`: opened before any work, so an unwritable path fails first.
class JsonOutput {
 public:
  explicit JsonOutput(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    file_.open(path_, std::ios::trunc);
    if (!file_)
      bad_option("--json", "a file this process can write", fmt::format("'{}': {}", path_, std::strerror(errno)));
  }
  /// Prints `text` and writes it to the file, if one was given.
  void write(const std::string& text) {
    fmt::print("{}\n", text);
    if (!file_.is_open()) return;
    file_ << text << "\n";
    file_.close();
    if (!file_) throw std::runtime_error(fmt::format("--json: writing '{}' failed: {}", path_, std::strerror(errno)));
  }

 private:
  std::string path_;
  std::ofstream file_;
};

}  // namespace commands
}  // namespace trainer

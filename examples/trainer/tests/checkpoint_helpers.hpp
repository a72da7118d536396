#pragma once
// Fixtures of the checkpoint-file tests: a trained-for-two-steps trainer to save, raw file writes,
// and parameter names.
#include "trainer/tests/fault_helpers.hpp"

#include <fstream>
#include <memory>
#include <string>

namespace trainer_tests {

/// A small trainer after two steps (Adam has state for every parameter), with a log window whose
/// sums need all 17 digits of a double.
inline std::unique_ptr<Trainer> stepped_trainer() {
  torch::set_num_threads(1);
  auto config = tiny_config(LossKind::kPatchNCE);
  config.ngf = 4;
  config.n_blocks = 1;
  config.ndf = 4;
  config.num_patches = 16;
  config.steps = 6;
  auto t = std::make_unique<Trainer>(config, torch::kCPU);
  UnpairedDataset data(config.data);
  for (int64_t s = 0; s < 2; ++s) t->train_step(data.batch(s, 1));
  t->log_window.add({0.1, 1.0 / 3.0, 2.0 / 7.0, -1e-300, 12345.678901234567});
  return t;
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// The name of the first parameter of `module` under `prefix` ("G.model.1.weight").
inline std::string first_parameter(const std::string& prefix, torch::nn::Module& module) {
  return prefix + "." + module.named_parameters().begin()->key();
}

}  // namespace trainer_tests

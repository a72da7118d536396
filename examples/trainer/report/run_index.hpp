// index.html of a run folder as `train` writes it (every --sample-every steps) and `evaluate --run`
// rewrites it (with the checkpoint scores): the title, the curves, the patch graph, the configuration.
#pragma once

#include "trainer/report/explain_report.hpp"
#include "trainer/report/report.hpp"
#include "trainer/train/config.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <vector>

namespace trainer::report {

inline void write_run_index(const std::filesystem::path& run_dir, const TrainConfig& config) {
  // One chart per logged loss, and the learning rate.
  static const std::vector<std::string> curves = {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_G", "lr"};
  write_index(run_dir, fmt::format("patchgcl trainer: {} / {}", to_string(config.loss), to_string(config.features)),
              config.serialize(), curves, explain::report_section(run_dir));
}

}  // namespace trainer::report

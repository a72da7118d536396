// `evaluate --run RUN --features FILE`: FID and KID of every checkpoint a run kept
// (train --keep-checkpoints, kept_checkpoints.hpp) and of its ckpt.safetensors, on the same data and the
// same real features (real_evaluation.hpp's RealDataScorer: the real side is computed once), and
// the best of them: the lowest FID, the earliest step on a tie.
#pragma once

#include "trainer/eval/real_evaluation.hpp"
#include "trainer/train/checkpoint.hpp"
#include "trainer/train/kept_checkpoints.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace trainer::evaluation {

struct CheckpointScore {
  int64_t step = 0;
  std::filesystem::path file;
  RealScores scores;
};

struct CheckpointTable {
  std::vector<CheckpointScore> rows;  ///< in step order
  size_t best = 0;                    ///< index of the lowest FID
  TrainConfig config;                 ///< the run's configuration
};

/// The step stored in a checkpoint file.
inline int64_t checkpoint_step(const std::filesystem::path& path) { return checkpoint::read_step(path); }

/// The checkpoints of a run folder in step order: checkpoints/step_*.safetensors, and ckpt.safetensors unless a kept
/// file has its step. None at all is an error naming the folder.
inline std::vector<std::pair<int64_t, std::filesystem::path>> run_checkpoints(const std::filesystem::path& run_dir) {
  if (!std::filesystem::is_directory(run_dir))
    throw std::invalid_argument(
        fmt::format("--run: expected a run folder of train, got '{}', which is not a folder", run_dir.string()));
  auto out = checkpoint::list_kept(run_dir);
  const auto latest = run_dir / kCheckpointFileName;
  if (std::filesystem::exists(latest)) {
    const int64_t step = checkpoint_step(latest);
    bool known = false;
    for (const auto& [s, file] : out) known = known || s == step;
    if (!known) out.emplace_back(step, latest);
    std::sort(out.begin(), out.end());
  }
  if (out.empty())
    throw std::invalid_argument(
        fmt::format("--run: '{}' holds no checkpoint (neither ckpt.safetensors nor checkpoints/step_*.safetensors); "
                    "train with --keep-checkpoints N to keep earlier ones",
                    run_dir.string()));
  return out;
}

/// Scores every checkpoint of `run_dir` against `data` (its testA/testB, or its single-image pair
/// when `single_image` or the run trained on one). `options`' crop_size / view_size 0 take the
/// run's crop size and twice it. `progress` is told each row as it is scored.
inline CheckpointTable score_checkpoints(const std::filesystem::path& run_dir, metrics::FeatureNetwork& net,
                                         const std::filesystem::path& data, RealDataOptions options, bool single_image,
                                         torch::Device device,
                                         const std::function<void(const CheckpointScore&)>& progress = {}) {
  const auto files = run_checkpoints(run_dir);
  std::unique_ptr<RealDataScorer> scorer;
  CheckpointTable table;
  for (const auto& [step, file] : files) {
    auto model = checkpoint::load_model(file, device);
    if (!scorer) {  // the real side, once: every checkpoint of a run has the run's configuration
      table.config = model->config();
      const auto& data_options = model->config().data;
      single_image = single_image || data_options.single_image;
      if (single_image && options.crop_size == 0) options.crop_size = static_cast<int>(data_options.crop_size);
      if (single_image && options.view_size == 0) options.view_size = 2 * options.crop_size;
      options.real_channels = model->config().output_nc;  // as evaluate_real: gray models, gray real images
      scorer = std::make_unique<RealDataScorer>(net, data, options, single_image);
    }
    CheckpointScore row{step, file,
                        scorer->score([&](const torch::Tensor& x) { return to_channels(model->translate(x), 3); })};
    if (progress) progress(row);
    table.rows.push_back(std::move(row));
  }
  for (size_t i = 1; i < table.rows.size(); ++i)
    if (table.rows[i].scores.fid < table.rows[table.best].scores.fid) table.best = i;
  return table;
}

}  // namespace trainer::evaluation

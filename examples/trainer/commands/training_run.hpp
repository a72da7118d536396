// The loop of `train`: everything that can be checked before training is checked first, then the
// run steps, logs (log.jsonl and a progress line), writes sample grids and the report, and
// checkpoints, so that a run killed at any moment resumes exactly (docs/trainer.md).
#pragma once

#include "trainer/report/explain_report.hpp"
#include "trainer/report/log_file.hpp"
#include "trainer/report/report.hpp"
#include "trainer/report/run_index.hpp"
#include "trainer/report/samples.hpp"
#include "trainer/train/checkpoint.hpp"
#include "trainer/train/generator_export.hpp"
#include "trainer/train/kept_checkpoints.hpp"
#include "trainer/train/resources.hpp"
#include "trainer/train/run_folder.hpp"
#include "trainer/train/run_monitor.hpp"
#include "trainer/train/signals.hpp"
#include "trainer/train/step_checks.hpp"
#include "trainer/train/trainer.hpp"

#include <fmt/format.h>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

namespace trainer {

/// Connects a data-parallel run (commands/train.hpp: rendezvous and process group from torchrun's
/// variables); empty: one process.
using Connect = std::function<std::unique_ptr<Collectives>()>;

/// One invocation of `train`, from its checks to its last checkpoint. Distributed (`connect`),
/// --batch-size is per process, every rank trains and resumes, and only rank 0 writes the run
/// folder (docs/distributed.md).
class TrainingRun {
 public:
  TrainingRun(const TrainConfig& config, const RunOptions& run, torch::Device device, const Connect& connect)
      : config_(config), run_(run), device_(device), ckpt_(run.run_dir / kCheckpointFileName) {
    config_.validate();
    validate_run_options(config_, run_);
    if (run_.auto_resume) run_.resume = std::filesystem::exists(ckpt_);
    // Memory before anything is created or read; the host's memory bounds a CPU run.
    check_training_memory(config_, count_data_files(config_), device_.is_cpu() ? available_memory() : -1);
    stop_on_signal_.emplace();  // SIGINT/SIGTERM from here on: finish the step, checkpoint, exit 128 + signal
    dist_ = connect ? connect() : nullptr;
    rank_ = dist_ ? dist_->rank() : 0;
    world_ = dist_ ? dist_->world() : 1;
    main_rank_ = rank_ == 0;
  }

  /// Runs (or resumes) to config.steps; returns the trainer.
  std::unique_ptr<Trainer> run() {
    if (dist_)
      dist_->check_same(fmt::format("{}resume={}\ndevice={}\n", config_.serialize(), run_.resume,
                                    c10::DeviceTypeName(device_.type(), true)),
                        "options", "start every rank with the same command");
    if (!run_.quiet && main_rank_)
      std::cerr << startup_line(config_, device_.str(), torch::get_num_threads()) << "\n" << std::flush;
    start_up(dist_.get(), [&] { load_and_check(); });
    if (dist_ && run_.resume)
      dist_->check_same(
          fmt::format("step={}", trainer_->step()), "checkpoints",
          "every rank must --resume from the same ckpt.safetensors (several machines: share the run folder)");
    trainer_->set_distributed(dist_.get(), run_.overlap_gradients);
    open_log();
    prepare_report();
    if (trainer_->step() == 0 && main_rank_) write_samples();
    loop();
    // --steps 0: the initial model
    if (!stopped_ && config_.steps == trainer_->step() && main_rank_ && !std::filesystem::exists(ckpt_))
      save_checkpoint();
    if (dist_) {
      dist_->barrier();
      trainer_->set_distributed(nullptr);
    }
    return std::move(trainer_);
  }

 private:
  /// In this order: the checkpoint (present for --resume, absent otherwise, same configuration),
  /// the run folder (writable, not in use), the data (folders exist and hold readable images);
  /// only then are the networks built.
  void load_and_check() {
    namespace fs = std::filesystem;
    if (fs::exists(run_.run_dir / "ckpt.pt") && !fs::exists(ckpt_))
      throw std::runtime_error(fmt::format(
          "run folder '{}' holds ckpt.pt, a checkpoint of the old LibTorch-archive format, which is no longer read "
          "(docs/trainer.md, \"Checkpoints and resume\"); it cannot be resumed or overwritten: choose another --run",
          run_.run_dir.string()));
    if (!run_.resume && main_rank_ && fs::exists(ckpt_))
      throw std::runtime_error(fmt::format(
          "run folder '{}' already holds a checkpoint; pass --resume to continue it or choose another --run",
          run_.run_dir.string()));
    if (run_.resume) {
      if (!fs::exists(ckpt_))
        throw std::runtime_error(
            fmt::format("--resume: no checkpoint at {} (expected the ckpt.safetensors of an earlier run "
                        "with the same --run{})",
                        ckpt_.string(), main_rank_ ? "" : "; every rank reads it: share the run folder"));
      checkpoint::require_same_config(ckpt_, checkpoint::read_config(ckpt_), config_);
    }
    if (main_rank_) {
      prepare_run_folder(run_.run_dir);
      lock_ = std::make_unique<RunLock>(run_.run_dir);
      remove_stale_temporaries(run_.run_dir);
    }
    data_ = std::make_unique<UnpairedDataset>(config_.data);
    if (data_->skipped() > 0 && main_rank_)
      std::cerr << fmt::format("warning: {} unreadable image(s) skipped\n", data_->skipped());
    trainer_ = std::make_unique<Trainer>(config_, device_, run_.vgg_weights);
    if (run_.resume) checkpoint::restore(*trainer_, ckpt_);
    // A run killed between writing ckpt.safetensors and keeping it: kept now.
    if (run_.resume && main_rank_)
      checkpoint::keep_checkpoint(run_.run_dir, ckpt_, trainer_->step(), run_.checkpoint_every, run_.keep_checkpoints);
  }

  /// log.jsonl: cut back to the checkpoint's step on --resume, started empty otherwise.
  void open_log() {
    if (run_.resume && main_rank_) {
      report::truncate_log(run_.run_dir / "log.jsonl", trainer_->step());
      if (!run_.quiet) std::cerr << fmt::format("resumed {} at step {}\n", ckpt_.string(), trainer_->step());
      if (trainer_->saved_world() != world_)
        std::cerr << fmt::format(
            "warning: {} was written by {} process(es) (global batch {}), this run has {} (global batch {}): training "
            "continues at step {} with the new global batch, from global sample {} of the data stream "
            "(docs/distributed.md)\n",
            ckpt_.string(), trainer_->saved_world(), trainer_->saved_world() * config_.batch_size, world_,
            world_ * config_.batch_size, trainer_->step(), trainer_->step() * world_ * config_.batch_size);
    } else if (main_rank_) {
      std::ofstream(run_.run_dir / "log.jsonl", std::ios::trunc);
    }
    if (dist_ && main_rank_ && !run_.quiet)
      std::cerr << fmt::format("distributed: {} processes ({}), global batch {} = {} x --batch-size {}\n", world_,
                               dist_->describe(), world_ * config_.batch_size, world_, config_.batch_size);
    if (main_rank_) std::ofstream(run_.run_dir / "config.txt") << config_.serialize();
    keys_ = report::log_keys();
    if (dist_) keys_.insert(keys_.end(), {"world_size", "global_batch", "bytes_all_reduced"});
  }

  void prepare_report() {
    if (!main_rank_) return;
    inputs_ = data_->preview(Domain::kA, run_.preview_count);
    targets_ = data_->preview(Domain::kB, run_.preview_count);
  }

  void write_samples() {
    write_png(run_.run_dir / "samples" / fmt::format("step_{:06}.png", trainer_->step()),
              sample_grid(*trainer_, inputs_, targets_));
    if (!inputs_.empty()) explain::write_step_pictures(*trainer_, inputs_.front(), run_.run_dir);
    report::write_run_index(run_.run_dir, config_);
  }

  /// A signal is honoured between steps, where the state is consistent: checkpoint, then stop.
  /// Distributed, every rank stops at the same step when any rank was asked to (one small
  /// all-reduce a step), and every rank waits until rank 0's last checkpoint is on disk.
  bool stop_requested(bool saved) {
    int signo = StopOnSignal::requested();
    if (dist_) {
      const auto m = dist_->average({signo ? 1.0 : 0.0, static_cast<double>(signo)});
      if (m[0] > 0 && signo == 0) signo = std::lround(m[1] / m[0]) == SIGINT ? SIGINT : SIGTERM;
    }
    if (signo == 0) return false;
    if (!saved && main_rank_) save_checkpoint();
    if (main_rank_)
      std::cerr << fmt::format(
          "\nstopped by {} at step {}: checkpoint written to {}; to continue, run the same command "
          "adding --resume\n",
          signo == SIGINT ? "SIGINT" : "SIGTERM", trainer_->step(), ckpt_.string());
    interrupted_by_signal() = signo;
    stopped_ = true;
    return true;
  }

  void loop() {
    start_ = window_start_ = std::chrono::steady_clock::now();
    first_step_ = trainer_->step();
    if (stop_requested(false)) return;
    while (trainer_->step() < config_.steps) {
      const auto step_start = std::chrono::steady_clock::now();
      const StepLosses losses = checked_step(*trainer_, *data_, config_, rank_, world_);
      if (trainer_->step() == first_step_ + 1 && !run_.quiet && main_rank_) {  // this process's first step, timed
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
        std::cerr << first_step_report(config_, seconds, config_.steps - trainer_->step(), device_.is_cpu())
                  << std::flush;
      }
      trainer_->log_window.add(losses);
      ++timed_steps_;
      const int64_t step = trainer_->step();
      const bool last = step == config_.steps;
      if (step % run_.log_every == 0 || last) log_window(step, last);
      if ((step % run_.sample_every == 0 || last) && main_rank_) write_samples();
      const bool saved = (step % run_.checkpoint_every == 0 || last) && main_rank_;
      if (saved) save_checkpoint();
      if (stop_requested(saved)) return;
    }
  }

  /// ckpt.safetensors, and a kept copy of it when its step is one --keep-checkpoints keeps (kept_checkpoints.hpp),
  /// then the generator alone under CUT's names for Python (generator_export.hpp).
  void save_checkpoint() {
    checkpoint::save(*trainer_, ckpt_);
    checkpoint::keep_checkpoint(run_.run_dir, ckpt_, trainer_->step(), run_.checkpoint_every, run_.keep_checkpoints);
    export_generator(*trainer_, run_.run_dir / "generator.safetensors", trainer_->step());
  }

  /// One log.jsonl record (and the progress line) for the steps since the last one.
  void log_window(int64_t step, bool last) {
    const auto& sum = trainer_->log_window.sum;
    const auto window = static_cast<double>(trainer_->log_window.steps);
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double window_s = std::chrono::duration<double>(now - window_start_).count();
    const double it_s = static_cast<double>(timed_steps_) / std::max(window_s, 1e-9);
    const double epoch = static_cast<double>(step * config_.batch_size * world_) / static_cast<double>(data_->size());
    report::Record r = {{"step", double(step)},
                        {"epoch", epoch},
                        {"lr", config_.lr * config_.lr_factor(step - 1)},
                        {"loss_D", sum.D / window},
                        {"loss_G_GAN", sum.G_GAN / window},
                        {"loss_NCE", sum.NCE / window},
                        {"loss_NCE_Y", sum.NCE_Y / window},
                        {"loss_G", sum.G / window},
                        {"it_per_s", it_s},
                        {"elapsed_s", elapsed},
                        {"world_size", double(world_)},
                        {"global_batch", double(world_ * config_.batch_size)},
                        {"bytes_all_reduced", double(trainer_->bytes_all_reduced())}};
    // An epoch means nothing in single-image mode (every step crops the same two images).
    const bool epochs = !config_.data.single_image;
    if (!epochs) r.erase("epoch");
    if (main_rank_) std::ofstream(run_.run_dir / "log.jsonl", std::ios::app) << report::to_json(r, keys_) << "\n";
    if (!run_.quiet && main_rank_) {
      const double overall = (step - first_step_) / std::max(elapsed, 1e-9);
      const std::string line =
          fmt::format("step {}/{}{}  {:.2f} it/s  ETA {}  D {:.3f}  G_GAN {:.3f}  NCE {:.3f}  NCE_Y {:.3f}", step,
                      config_.steps, epochs ? fmt::format("  epoch {:.2f}", epoch) : std::string(), it_s,
                      format_duration((config_.steps - step) / std::max(overall, 1e-9)), r["loss_D"], r["loss_G_GAN"],
                      r["loss_NCE"], r["loss_NCE_Y"]);
      std::cerr << (tty_ ? "\r\033[K" : "") << line << (tty_ && !last ? "" : "\n") << std::flush;
    }
    trainer_->log_window = {};
    timed_steps_ = 0;
    window_start_ = now;
  }

  TrainConfig config_;
  RunOptions run_;
  torch::Device device_;
  std::filesystem::path ckpt_;
  std::optional<StopOnSignal> stop_on_signal_;
  std::unique_ptr<Collectives> dist_;
  int rank_ = 0, world_ = 1;
  bool main_rank_ = true;
  std::unique_ptr<RunLock> lock_;
  std::unique_ptr<UnpairedDataset> data_;
  std::unique_ptr<Trainer> trainer_;
  std::vector<std::string> keys_;
  std::vector<Image> inputs_, targets_;
  const bool tty_ = isatty(fileno(stderr));
  std::chrono::steady_clock::time_point start_, window_start_;
  int64_t first_step_ = 0;
  int64_t timed_steps_ = 0;  // a resumed window starts at the checkpoint: only this process's steps count
  bool stopped_ = false;
};

/// `train`: runs (or resumes) to config.steps, writing the run folder. Returns the trainer.
inline std::unique_ptr<Trainer> train(const TrainConfig& config, const RunOptions& run, torch::Device device,
                                      const Connect& connect = {}) {
  return TrainingRun(config, run, device, connect).run();
}

}  // namespace trainer

// `train`: the loop around the training step. It checks everything that can be checked before
// training, then steps, logs (log.jsonl and a progress line), writes sample grids and the report,
// and checkpoints, so that a run killed at any moment resumes exactly (docs/reliability.md).
#pragma once

#include "checkpoint.hpp"
#include "explain_report.hpp"
#include "log_file.hpp"
#include "report.hpp"
#include "resources.hpp"
#include "run_folder.hpp"
#include "run_monitor.hpp"
#include "signals.hpp"
#include "trainer.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace trainer {

/// "MM:SS", or "H:MM:SS" from an hour on; "--:--" when unknown.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

/// input | G(input) | target-domain example, one row per preview image.
inline Image sample_grid(Trainer& trainer, const std::vector<Image>& inputs, const std::vector<Image>& targets) {
  std::vector<std::vector<Image>> rows;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto out = trainer.translate(to_tensor(inputs[i]).unsqueeze(0));
    Image target = targets.empty() ? Image{} : targets[i % targets.size()];
    if (!target.empty() && (target.width != inputs[i].width || target.height != inputs[i].height))
      target = resize(target, inputs[i].width, inputs[i].height);
    rows.push_back({inputs[i], from_tensor(out)});
    if (!target.empty()) rows.back().push_back(target);
  }
  return report::grid(rows);
}

/// One training step; a diverged one (non-finite losses, stopped by the library's finiteness checks
/// or seen here) ends the run with what happened, at which step, and what to try.
inline StepLosses checked_step(Trainer& trainer, const UnpairedDataset& data, const TrainConfig& config) {
  StepLosses losses;
  try {
    losses = trainer.train_step(data.batch(trainer.step(), config.batch_size));
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (what.find("NaN or Inf") == std::string::npos) throw;
    throw std::runtime_error(divergence_message(config, trainer.step() + 1, what.substr(0, what.find('\n'))));
  }
  if (!std::isfinite(losses.D) || !std::isfinite(losses.G))
    throw std::runtime_error(
        divergence_message(config, trainer.step(), fmt::format("loss_D = {}, loss_G = {}", losses.D, losses.G)));
  return losses;
}

/// `train`: runs (or resumes) to config.steps, writing the run folder. Returns the trainer.
/// Everything that can be checked without training is checked first, in this order: option values,
/// the checkpoint (present for --resume, absent otherwise, same configuration), the run folder
/// (writable, not in use), the data (folders exist and hold readable images); only then are the
/// networks built.
inline std::unique_ptr<Trainer> train(const TrainConfig& config, const RunOptions& run, torch::Device device) {
  namespace fs = std::filesystem;
  config.validate();
  validate_run_options(config, run);
  // Memory before anything is created or read (issue 11, item 5); the host's memory bounds a CPU run.
  check_training_memory(config, count_data_files(config), device.is_cpu() ? available_memory() : -1);
  if (!run.quiet) std::cerr << startup_line(config, device.str(), torch::get_num_threads()) << "\n" << std::flush;
  StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: finish the step, checkpoint, exit 128 + signal (main.cpp)
  const fs::path ckpt = run.run_dir / "ckpt.pt";
  if (!run.resume && fs::exists(ckpt))
    throw std::runtime_error(fmt::format(
        "run folder '{}' already holds a checkpoint; pass --resume to continue it or choose another --run",
        run.run_dir.string()));
  if (run.resume) {
    if (!fs::exists(ckpt))
      throw std::runtime_error(fmt::format(
          "--resume: no checkpoint at {} (expected the ckpt.pt of an earlier run with the same --run)", ckpt.string()));
    checkpoint::require_same_config(ckpt, checkpoint::read_config(ckpt), config);
  }
  prepare_run_folder(run.run_dir);
  RunLock lock(run.run_dir);
  remove_stale_temporaries(run.run_dir);
  UnpairedDataset data(config.data);
  if (data.skipped() > 0) std::cerr << fmt::format("warning: {} unreadable image(s) skipped\n", data.skipped());
  auto trainer = std::make_unique<Trainer>(config, device, run.vgg_weights);
  if (run.resume) {
    checkpoint::restore(*trainer, ckpt);
    report::truncate_log(run.run_dir / "log.jsonl", trainer->step());
    if (!run.quiet) std::cerr << fmt::format("resumed {} at step {}\n", ckpt.string(), trainer->step());
  } else {
    std::ofstream(run.run_dir / "log.jsonl", std::ios::trunc);
  }
  std::ofstream(run.run_dir / "config.txt") << config.serialize();
  const auto inputs = data.preview(Domain::kA, run.preview_count);
  const auto targets = data.preview(Domain::kB, run.preview_count);
  const std::string title = fmt::format("patchgcl trainer: {} / {}", to_string(config.loss), to_string(config.features));
  // One chart per logged loss, and the learning rate.
  const std::vector<std::string> curves = {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_G", "lr"};

  auto write_samples = [&] {
    write_png(run.run_dir / "samples" / fmt::format("step_{:06}.png", trainer->step()),
              sample_grid(*trainer, inputs, targets));
    if (!inputs.empty()) explain::write_step_pictures(*trainer, inputs.front(), run.run_dir);
    report::write_index(run.run_dir, title, config.serialize(), curves, explain::report_section(run.run_dir));
  };
  if (trainer->step() == 0) write_samples();

  const bool tty = isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  const int64_t first_step = trainer->step();
  // A resumed window starts at the checkpoint, so it_per_s counts only the steps of this process.
  int64_t timed_steps = 0;
  // A signal is honoured between steps, where the state is consistent: checkpoint, then stop.
  auto stopped = [&](bool saved) {
    const int signo = StopOnSignal::requested();
    if (signo == 0) return false;
    if (!saved) checkpoint::save(*trainer, ckpt);
    std::cerr << fmt::format("\nstopped by {} at step {}: checkpoint written to {}; to continue, run the same command "
                             "adding --resume\n", signo == SIGINT ? "SIGINT" : "SIGTERM", trainer->step(), ckpt.string());
    interrupted_by_signal() = signo;
    return true;
  };
  if (stopped(false)) return trainer;
  while (trainer->step() < config.steps) {
    const auto step_start = std::chrono::steady_clock::now();
    const StepLosses losses = checked_step(*trainer, data, config);
    if (trainer->step() == first_step + 1 && !run.quiet) {  // the first step of this process, timed
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      std::cerr << first_step_report(config, seconds, config.steps - trainer->step(), device.is_cpu()) << std::flush;
    }
    trainer->log_window.add(losses);
    ++timed_steps;
    const auto& sum = trainer->log_window.sum;
    const auto window = static_cast<double>(trainer->log_window.steps);
    const int64_t step = trainer->step();
    const bool last = step == config.steps;
    if (step % run.log_every == 0 || last) {
      auto now = std::chrono::steady_clock::now();
      double elapsed = std::chrono::duration<double>(now - start).count();
      double window_s = std::chrono::duration<double>(now - window_start).count();
      double it_s = static_cast<double>(timed_steps) / std::max(window_s, 1e-9);
      double epoch = static_cast<double>(step * config.batch_size) / static_cast<double>(data.size());
      // An epoch means nothing in single-image mode (every step crops the same two images).
      const bool epochs = !config.data.single_image;
      report::Record r = {{"step", double(step)}, {"epoch", epoch}, {"lr", config.lr * config.lr_factor(step - 1)},
                          {"loss_D", sum.D / window}, {"loss_G_GAN", sum.G_GAN / window}, {"loss_NCE", sum.NCE / window},
                          {"loss_NCE_Y", sum.NCE_Y / window}, {"loss_G", sum.G / window}, {"it_per_s", it_s},
                          {"elapsed_s", elapsed}};
      if (!epochs) r.erase("epoch");
      std::ofstream(run.run_dir / "log.jsonl", std::ios::app) << report::to_json(r, report::log_keys()) << "\n";
      if (!run.quiet) {
        double overall = (step - first_step) / std::max(elapsed, 1e-9);
        const std::string line = fmt::format(
            "step {}/{}{}  {:.2f} it/s  ETA {}  D {:.3f}  G_GAN {:.3f}  NCE {:.3f}  NCE_Y {:.3f}", step, config.steps,
            epochs ? fmt::format("  epoch {:.2f}", epoch) : std::string(), it_s,
            format_duration((config.steps - step) / std::max(overall, 1e-9)), r["loss_D"], r["loss_G_GAN"],
            r["loss_NCE"], r["loss_NCE_Y"]);
        std::cerr << (tty ? "\r\033[K" : "") << line << (tty && !last ? "" : "\n") << std::flush;
      }
      trainer->log_window = {};
      timed_steps = 0;
      window_start = now;
    }
    if (step % run.sample_every == 0 || last) write_samples();
    const bool saved = step % run.checkpoint_every == 0 || last;
    if (saved) checkpoint::save(*trainer, ckpt);
    if (stopped(saved)) return trainer;
  }
  if (config.steps == trainer->step() && !fs::exists(ckpt)) checkpoint::save(*trainer, ckpt);  // --steps 0: the initial model
  return trainer;
}

}  // namespace trainer

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
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
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

/// Connects a data-parallel run (main.cpp: rendezvous and process group from torchrun's
/// variables); empty: one process.
using Connect = std::function<std::unique_ptr<Collectives>()>;

/// Runs `checks` on every rank; in a distributed run the ranks then tell each other whether theirs
/// passed, so that a bad file on one rank stops all of them at once (its own error on that rank,
/// the names of the failed ranks on the others) instead of leaving them waiting for --dist-timeout.
template <typename Checks>
void start_up(Collectives* dist, Checks&& checks) {
  if (!dist) return checks();
  std::exception_ptr error;
  try {
    checks();
  } catch (...) {
    error = std::current_exception();
  }
  const auto failed = dist->failed_ranks(!error);
  if (error) std::rethrow_exception(error);
  if (!failed.empty())
    throw std::runtime_error(fmt::format("rank {}: stopping: rank(s) {} failed their start-up checks (their own "
                                         "error says why)", dist->rank(), fmt::join(failed, ", ")));
}

/// One training step; a diverged one (non-finite losses, stopped by the library's finiteness checks
/// or seen here) ends the run with what happened, at which step, and what to try.
inline StepLosses checked_step(Trainer& trainer, const UnpairedDataset& data, const TrainConfig& config, int rank = 0,
                               int world = 1) {
  StepLosses losses;
  try {
    losses = trainer.train_step(data.batch(trainer.step(), config.batch_size, rank, world));
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
/// (distributed: the rendezvous, the same options on every rank) the checkpoint (present for
/// --resume, absent otherwise, same configuration), the run folder (writable, not in use), the data
/// (folders exist and hold readable images); only then are the networks built.
/// Distributed (`connect`), --batch-size is per process, every rank trains and resumes, and only
/// rank 0 writes the run folder (docs/distributed.md).
inline std::unique_ptr<Trainer> train(const TrainConfig& config, const RunOptions& run, torch::Device device,
                                      const Connect& connect = {}) {
  namespace fs = std::filesystem;
  config.validate();
  validate_run_options(config, run);
  // Memory before anything is created or read (issue 11, item 5); the host's memory bounds a CPU run.
  check_training_memory(config, count_data_files(config), device.is_cpu() ? available_memory() : -1);
  StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: finish the step, checkpoint, exit 128 + signal (main.cpp)
  const std::unique_ptr<Collectives> dist = connect ? connect() : nullptr;
  const int rank = dist ? dist->rank() : 0, world = dist ? dist->world() : 1;
  const bool main_rank = rank == 0;
  if (dist)
    dist->check_same(fmt::format("{}resume={}\ndevice={}\n", config.serialize(), run.resume,
                                 c10::DeviceTypeName(device.type(), true)),
                     "options", "start every rank with the same command");
  if (!run.quiet && main_rank) std::cerr << startup_line(config, device.str(), torch::get_num_threads()) << "\n" << std::flush;
  const fs::path ckpt = run.run_dir / "ckpt.pt";
  std::unique_ptr<RunLock> lock;
  std::unique_ptr<UnpairedDataset> data;
  std::unique_ptr<Trainer> trainer;
  start_up(dist.get(), [&] {
    if (!run.resume && main_rank && fs::exists(ckpt))
      throw std::runtime_error(fmt::format(
          "run folder '{}' already holds a checkpoint; pass --resume to continue it or choose another --run",
          run.run_dir.string()));
    if (run.resume) {
      if (!fs::exists(ckpt))
        throw std::runtime_error(fmt::format("--resume: no checkpoint at {} (expected the ckpt.pt of an earlier run "
                                             "with the same --run{})", ckpt.string(),
                                             main_rank ? "" : "; every rank reads it: share the run folder"));
      checkpoint::require_same_config(ckpt, checkpoint::read_config(ckpt), config);
    }
    if (main_rank) {
      prepare_run_folder(run.run_dir);
      lock = std::make_unique<RunLock>(run.run_dir);
      remove_stale_temporaries(run.run_dir);
    }
    data = std::make_unique<UnpairedDataset>(config.data);
    if (data->skipped() > 0 && main_rank)
      std::cerr << fmt::format("warning: {} unreadable image(s) skipped\n", data->skipped());
    trainer = std::make_unique<Trainer>(config, device, run.vgg_weights);
    if (run.resume) checkpoint::restore(*trainer, ckpt);
  });
  if (dist && run.resume)
    dist->check_same(fmt::format("step={}", trainer->step()), "checkpoints",
                     "every rank must --resume from the same ckpt.pt (several machines: share the run folder)");
  trainer->set_distributed(dist.get());
  if (run.resume && main_rank) {
    report::truncate_log(run.run_dir / "log.jsonl", trainer->step());
    if (!run.quiet) std::cerr << fmt::format("resumed {} at step {}\n", ckpt.string(), trainer->step());
    if (trainer->saved_world() != world)
      std::cerr << fmt::format(
          "warning: {} was written by {} process(es) (global batch {}), this run has {} (global batch {}): training "
          "continues at step {} with the new global batch, from global sample {} of the data stream (docs/distributed.md)\n",
          ckpt.string(), trainer->saved_world(), trainer->saved_world() * config.batch_size, world,
          world * config.batch_size, trainer->step(), trainer->step() * world * config.batch_size);
  } else if (main_rank) {
    std::ofstream(run.run_dir / "log.jsonl", std::ios::trunc);
  }
  if (dist && main_rank && !run.quiet)
    std::cerr << fmt::format("distributed: {} processes ({}), global batch {} = {} x --batch-size {}\n", world,
                             dist->describe(), world * config.batch_size, world, config.batch_size);
  if (main_rank) std::ofstream(run.run_dir / "config.txt") << config.serialize();
  const auto inputs = main_rank ? data->preview(Domain::kA, run.preview_count) : std::vector<Image>{};
  const auto targets = main_rank ? data->preview(Domain::kB, run.preview_count) : std::vector<Image>{};
  const std::string title = fmt::format("patchgcl trainer: {} / {}", to_string(config.loss), to_string(config.features));
  // One chart per logged loss, and the learning rate.
  const std::vector<std::string> curves = {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_G", "lr"};
  auto keys = report::log_keys();
  if (dist) keys.insert(keys.end(), {"world_size", "global_batch", "bytes_all_reduced"});

  auto write_samples = [&] {
    write_png(run.run_dir / "samples" / fmt::format("step_{:06}.png", trainer->step()),
              sample_grid(*trainer, inputs, targets));
    if (!inputs.empty()) explain::write_step_pictures(*trainer, inputs.front(), run.run_dir);
    report::write_index(run.run_dir, title, config.serialize(), curves, explain::report_section(run.run_dir));
  };
  if (trainer->step() == 0 && main_rank) write_samples();

  const bool tty = isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  const int64_t first_step = trainer->step();
  // A resumed window starts at the checkpoint, so it_per_s counts only the steps of this process.
  int64_t timed_steps = 0;
  // A signal is honoured between steps, where the state is consistent: checkpoint, then stop.
  // Distributed, every rank stops at the same step when any rank was asked to (one small all-reduce
  // a step), and every rank waits until rank 0's last checkpoint is on disk before it returns.
  auto finish = [&] {
    if (dist) {
      dist->barrier();
      trainer->set_distributed(nullptr);
    }
    return std::move(trainer);
  };
  auto stopped = [&](bool saved) {
    int signo = StopOnSignal::requested();
    if (dist) {
      const auto m = dist->average({signo ? 1.0 : 0.0, static_cast<double>(signo)});
      if (m[0] > 0 && signo == 0) signo = std::lround(m[1] / m[0]) == SIGINT ? SIGINT : SIGTERM;
    }
    if (signo == 0) return false;
    if (!saved && main_rank) checkpoint::save(*trainer, ckpt);
    if (main_rank)
      std::cerr << fmt::format("\nstopped by {} at step {}: checkpoint written to {}; to continue, run the same command "
                             "adding --resume\n", signo == SIGINT ? "SIGINT" : "SIGTERM", trainer->step(), ckpt.string());
    interrupted_by_signal() = signo;
    return true;
  };
  if (stopped(false)) return finish();
  while (trainer->step() < config.steps) {
    const auto step_start = std::chrono::steady_clock::now();
    const StepLosses losses = checked_step(*trainer, *data, config, rank, world);
    if (trainer->step() == first_step + 1 && !run.quiet && main_rank) {  // the first step of this process, timed
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
      double epoch = static_cast<double>(step * config.batch_size * world) / static_cast<double>(data->size());
      report::Record r = {{"step", double(step)}, {"epoch", epoch}, {"lr", config.lr * config.lr_factor(step - 1)},
                          {"loss_D", sum.D / window}, {"loss_G_GAN", sum.G_GAN / window}, {"loss_NCE", sum.NCE / window},
                          {"loss_NCE_Y", sum.NCE_Y / window}, {"loss_G", sum.G / window}, {"it_per_s", it_s},
                          {"elapsed_s", elapsed}, {"world_size", double(world)},
                          {"global_batch", double(world * config.batch_size)},
                          {"bytes_all_reduced", double(trainer->bytes_all_reduced())}};
      // An epoch means nothing in single-image mode (every step crops the same two images).
      const bool epochs = !config.data.single_image;
      if (!epochs) r.erase("epoch");
      if (main_rank) std::ofstream(run.run_dir / "log.jsonl", std::ios::app) << report::to_json(r, keys) << "\n";
      if (!run.quiet && main_rank) {
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
    if ((step % run.sample_every == 0 || last) && main_rank) write_samples();
    const bool saved = (step % run.checkpoint_every == 0 || last) && main_rank;
    if (saved) checkpoint::save(*trainer, ckpt);
    if (stopped(saved)) return finish();
  }
  // --steps 0: the initial model
  if (config.steps == trainer->step() && main_rank && !fs::exists(ckpt)) checkpoint::save(*trainer, ckpt);
  return finish();
}

}  // namespace trainer

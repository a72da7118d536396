// The checks around a training step that every rank takes part in: start-up checks whose failure
// on one rank stops them all at once, and a step whose losses stopped being finite.
#pragma once

#include "trainer/data/dataset.hpp"
#include "trainer/dist/collectives.hpp"
#include "trainer/train/run_monitor.hpp"
#include "trainer/train/trainer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>

namespace trainer {

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
    throw std::runtime_error(
        fmt::format("rank {}: stopping: rank(s) {} failed their start-up checks (their own "
                    "error says why)",
                    dist->rank(), fmt::join(failed, ", ")));
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

}  // namespace trainer

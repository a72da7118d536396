// What `train` tells the user before and around the first step: a start-up line
// at once (the data found, the model sizes, the device and the threads), then the duration of the
// first step and the run's estimate, with a warning naming the faster options when a CPU run will
// take more than an hour. Also the divergence message of a run whose losses stopped being finite.
#pragma once

#include "trainer/data/image_io.hpp"
#include "trainer/train/config.hpp"
#include "trainer/train/resources.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <string>

namespace trainer {

/// "MM:SS", or "H:MM:SS" from an hour on; "--:--" when unknown.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

/// "embedded synthetic dataset, 400 images per domain, 64 x 64" or the image files a folder holds.
inline std::string describe_data(const TrainConfig& c) {
  namespace fs = std::filesystem;
  if (c.data.root == kSyntheticData)
    return fmt::format("embedded synthetic dataset, {} images per domain, {} x {}", c.data.synthetic_count,
                       c.data.synthetic_size, c.data.synthetic_size);
  const auto count = [&](const char* sub) {
    std::error_code ec;
    return fs::is_directory(fs::path(c.data.root) / sub, ec) ? list_images(fs::path(c.data.root) / sub).size()
                                                             : size_t{0};
  };
  if (c.data.single_image)
    return fmt::format("{}: single-image mode (first image of trainA/ and trainB/), {} x {} crops", c.data.root,
                       c.data.crop_size, c.data.crop_size);
  return fmt::format("{}: {} + {} image files in trainA/ + trainB/, resized to {} x {}, {} x {} crops", c.data.root,
                     count("trainA"), count("trainB"), c.data.load_size, c.data.load_size, c.data.crop_size,
                     c.data.crop_size);
}

/// Image files `train` will hold in memory (trainA/, trainB/, testA/, testB/), for the memory check.
inline int64_t count_data_files(const TrainConfig& c) {
  namespace fs = std::filesystem;
  if (c.data.root == kSyntheticData) return 0;
  int64_t n = 0;
  for (const char* sub : {"trainA", "trainB", "testA", "testB"}) {
    std::error_code ec;
    if (fs::is_directory(fs::path(c.data.root) / sub, ec))
      n += static_cast<int64_t>(list_images(fs::path(c.data.root) / sub).size());
  }
  return n;
}

/// The line `train` prints before it loads anything.
inline std::string startup_line(const TrainConfig& c, const std::string& device, int threads) {
  return fmt::format(
      "train: {} | G: ngf {}, {} residual blocks, {:.2f}M parameters | D: ndf {}, {:.2f}M parameters | {} loss on {} "
      "features | {} steps, batch {} | device {}, {} thread(s) | memory: about {} needed, {} available",
      describe_data(c), c.ngf, c.n_blocks, generator_parameters(c) / 1e6, c.ndf, discriminator_parameters(c) / 1e6,
      to_string(c.loss), to_string(c.features), c.steps, c.batch_size, device, threads,
      format_bytes(estimate_training_memory(c, count_data_files(c)).total()),
      available_memory() < 0 ? std::string("unknown") : format_bytes(available_memory()));
}

/// After the first step: its duration, the run's estimate and, for a CPU run of more than an hour,
/// a warning that names what makes it faster.
inline std::string first_step_report(const TrainConfig& c, double first_step_s, int64_t remaining_steps, bool cpu) {
  const double total = first_step_s * static_cast<double>(remaining_steps);
  const auto human = [](double s) {
    if (s < 90) return fmt::format("{:.0f} s", s);
    if (s < 5400) return fmt::format("{:.0f} min", s / 60);
    return fmt::format("{:.1f} h", s / 3600);
  };
  std::string out = fmt::format("first step took {:.2f} s: the remaining {} steps will take about {}\n", first_step_s,
                                remaining_steps, human(total));
  if (cpu && total > 3600) {
    out += fmt::format("warning: on the CPU this run will take about {}. Faster:", human(total));
    if (c.synthetic_size_or_crop() > 128)
      out += fmt::format(" {} {} (time grows with the pixels),",
                         c.data.root == kSyntheticData ? "--synthetic-size" : "--crop-size",
                         c.synthetic_size_or_crop() / 2);
    if (c.ngf > 16 || c.ndf > 16) out += " --ngf 16 --ndf 16,";
    if (c.n_blocks > 3) out += " --n-blocks 3,";
    if (c.batch_size > 1) out += " --batch-size 1,";
    out += " fewer --steps, or --device cuda\n";
  }
  return out;
}

/// Non-finite losses after `step`: the message that ends the run (the checkpoint on disk is older and intact).
inline std::string divergence_message(const TrainConfig& c, int64_t step, const std::string& what) {
  return fmt::format(
      "training diverged at step {}: {}. The last checkpoint was written before this and is unchanged. Try a lower "
      "--lr (this run: {}), a lower --lambda-gan or --lambda, or another --seed",
      step, what, format_number(c.lr));
}

}  // namespace trainer

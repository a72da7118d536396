// The trainer's subcommands as functions (main.cpp only parses the command line), so the tests
// drive exactly what a user runs.
#pragma once

#include "evaluate.hpp"
#include "report.hpp"
#include "trainer.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <sys/file.h>
#include <unistd.h>

namespace trainer {

struct RunOptions {
  std::filesystem::path run_dir = "runs/demo";
  bool resume = false;
  std::string vgg_weights;
  int64_t log_every = 10;
  int64_t sample_every = 200;
  int64_t checkpoint_every = 200;
  int preview_count = 4;
  bool quiet = false;  // no progress line (tests)
};

inline torch::Device parse_device(const std::string& name) {
  torch::Device device(name);  // throws c10::Error on a malformed name
  if (device.is_cuda() && !torch::cuda::is_available())
    throw std::runtime_error("--device " + name + " requested but CUDA is not available in this LibTorch build/machine");
  return device;
}

inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof(buf), "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
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

inline const std::vector<std::string>& log_keys() {
  static const std::vector<std::string> keys = {"step", "epoch", "lr", "loss_D", "loss_G_GAN", "loss_NCE",
                                                "loss_NCE_Y", "loss_G", "it_per_s", "elapsed_s"};
  return keys;
}

/// Checks the options of `train` that are not part of the training configuration.
inline void validate_run_options(const TrainConfig& config, const RunOptions& run) {
  if (run.run_dir.empty()) bad_option("--run", "a folder", "''");
  for (auto [option, value] : {std::pair<const char*, int64_t>{"--log-every", run.log_every},
                               {"--sample-every", run.sample_every}, {"--checkpoint-every", run.checkpoint_every}})
    if (value < 1) bad_option(option, "at least 1", std::to_string(value));
  if (config.features == FeatureKind::kVGG16) {
    if (run.vgg_weights.empty())
      bad_option("--vgg-weights", "a VGG16 weight file with --features vgg16 (docs/trainer.md has the export one-liner)", "none");
    if (!std::filesystem::is_regular_file(run.vgg_weights))
      bad_option("--vgg-weights", "an existing file", "'" + run.vgg_weights + "', which does not exist");
  }
}

/// An exclusive flock(2) on DIR/.lock for the lifetime of a run: a second trainer on the same
/// run folder is refused instead of interleaving its checkpoints and log with the first.
/// The kernel drops the lock when the process dies, kill -9 included.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir) {
    const auto path = dir / ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("--run '" + dir.string() + "': cannot create " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw std::runtime_error("--run '" + dir.string() + "' is in use by another patchgcl-trainer process (" +
                               path.string() + " is locked)");
    }
  }
  ~RunLock() { ::close(fd_); }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

/// Creates the run folder and samples/ and proves them writable by creating and removing a file in
/// each, so an unwritable --run fails before any data is loaded or network built (not at the
/// first checkpoint.
inline void prepare_run_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const std::string expected = "a folder this process can create files in";
  std::error_code ec;
  fs::create_directories(dir / "samples", ec);
  if (ec) bad_option("--run", expected, "'" + dir.string() + "', which cannot be created: " + ec.message());
  for (const fs::path& sub : {dir, dir / "samples"}) {
    const auto probe = sub / ".write-probe.tmp";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) bad_option("--run", expected, "'" + sub.string() + "': " + std::strerror(errno));
    const bool wrote = ::write(fd, "x", 1) == 1;
    const int err = errno;
    ::close(fd);
    fs::remove(probe, ec);
    if (!wrote) bad_option("--run", expected, "'" + sub.string() + "': " + std::strerror(err));
  }
}

/// Removes the `*.tmp` files a killed run may have left in the run folder and samples/ (an
/// interrupted checkpoint, log rewrite, index.html or sample grid). The finished files they were
/// to replace are never touched. Call with the RunLock held, so no live run's file is removed.
inline void remove_stale_temporaries(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const fs::path& sub : {dir, dir / "samples"})
    for (const auto& entry : fs::directory_iterator(sub))
      if (entry.path().extension() == ".tmp" && entry.is_regular_file()) fs::remove(entry.path(), ec);
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
  const fs::path ckpt = run.run_dir / "ckpt.pt";
  if (!run.resume && fs::exists(ckpt))
    throw std::runtime_error("run folder '" + run.run_dir.string() +
                             "' already holds a checkpoint; pass --resume to continue it or choose another --run");
  if (run.resume) {
    if (!fs::exists(ckpt))
      throw std::runtime_error("--resume: no checkpoint at " + ckpt.string() +
                               " (expected the ckpt.pt of an earlier run with the same --run)");
    auto diff = Trainer::read_config(ckpt).differences(config);
    if (!diff.empty()) {
      std::string msg = "checkpoint '" + ckpt.string() + "' was written with a different configuration:";
      for (const auto& d : diff) msg += "\n  " + d;
      throw std::runtime_error(msg + "\nrun the same command as the original run, adding --resume");
    }
  }
  prepare_run_folder(run.run_dir);
  RunLock lock(run.run_dir);
  remove_stale_temporaries(run.run_dir);
  UnpairedDataset data(config.data);
  if (data.skipped() > 0) std::cerr << "warning: " << data.skipped() << " unreadable image(s) skipped\n";
  auto trainer = std::make_unique<Trainer>(config, device, run.vgg_weights);
  if (run.resume) {
    trainer->load(ckpt);
    report::truncate_log(run.run_dir / "log.jsonl", trainer->step());
    if (!run.quiet) std::cerr << "resumed " << ckpt.string() << " at step " << trainer->step() << "\n";
  } else {
    std::ofstream(run.run_dir / "log.jsonl", std::ios::trunc);
  }
  {
    std::ofstream cfg(run.run_dir / "config.txt");
    cfg << config.serialize();
  }
  const auto inputs = data.preview(Domain::kA, run.preview_count);
  const auto targets = data.preview(Domain::kB, run.preview_count);
  const std::string title = "patchgcl trainer: " + to_string(config.loss) + " / " + to_string(config.features);
  const std::vector<std::string> curves = {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "lr"};

  auto write_samples = [&] {
    char name[64];
    std::snprintf(name, sizeof(name), "step_%06lld.png", static_cast<long long>(trainer->step()));
    write_png(run.run_dir / "samples" / name, sample_grid(*trainer, inputs, targets));
    report::write_index(run.run_dir, title, config.serialize(), curves);
  };
  if (trainer->step() == 0) write_samples();

  const bool tty = isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  const int64_t first_step = trainer->step();
  // A resumed window starts at the checkpoint, so it_per_s counts only the steps of this process.
  int64_t timed_steps = 0;
  while (trainer->step() < config.steps) {
    auto losses = trainer->train_step(data.batch(trainer->step(), config.batch_size));
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
      report::Record r = {{"step", double(step)}, {"epoch", epoch}, {"lr", config.lr * config.lr_factor(step - 1)},
                          {"loss_D", sum.D / window}, {"loss_G_GAN", sum.G_GAN / window}, {"loss_NCE", sum.NCE / window},
                          {"loss_NCE_Y", sum.NCE_Y / window}, {"loss_G", sum.G / window}, {"it_per_s", it_s},
                          {"elapsed_s", elapsed}};
      std::ofstream(run.run_dir / "log.jsonl", std::ios::app) << report::to_json(r, log_keys()) << "\n";
      if (!run.quiet) {
        double overall = (step - first_step) / std::max(elapsed, 1e-9);
        char line[256];
        std::snprintf(line, sizeof(line),
                      "step %lld/%lld  epoch %.2f  %.2f it/s  ETA %s  D %.3f  G_GAN %.3f  NCE %.3f  NCE_Y %.3f",
                      static_cast<long long>(step), static_cast<long long>(config.steps), epoch, it_s,
                      format_duration((config.steps - step) / std::max(overall, 1e-9)).c_str(), r["loss_D"],
                      r["loss_G_GAN"], r["loss_NCE"], r["loss_NCE_Y"]);
        std::cerr << (tty ? "\r\033[K" : "") << line << (tty && !last ? "" : "\n") << std::flush;
      }
      trainer->log_window = {};
      timed_steps = 0;
      window_start = now;
    }
    if (step % run.sample_every == 0 || last) write_samples();
    if (step % run.checkpoint_every == 0 || last) trainer->save(ckpt);
  }
  if (config.steps == trainer->step() && !fs::exists(ckpt)) trainer->save(ckpt);  // --steps 0: the initial model
  return trainer;
}

/// Rebuilds a trainer (networks + configuration) from a checkpoint, for translate/evaluate.
inline std::unique_ptr<Trainer> load_checkpoint(const std::filesystem::path& ckpt, torch::Device device,
                                                const std::string& vgg_weights = "") {
  TrainConfig config = Trainer::read_config(ckpt);
  // The VGG features only matter for training; translation needs the generator alone.
  bool vgg = config.features == FeatureKind::kVGG16;
  if (vgg && vgg_weights.empty()) config.features = FeatureKind::kEncoder;
  auto trainer = std::make_unique<Trainer>(config, device, vgg_weights);
  torch::serialize::InputArchive archive, g;
  Trainer::open_archive(archive, ckpt, device);
  archive.read("G", g);
  trainer->G->load(g);
  return trainer;
}

/// `translate`: an image or every image of a folder -> PNGs in `out_dir` (same stem).
/// `size` > 0 resizes the short side first; sides are rounded to multiples of 4 (the generator's stride).
/// Returns the number of images written; unreadable files are skipped with a warning.
inline int translate(Trainer& trainer, const std::filesystem::path& input, const std::filesystem::path& out_dir,
                     int size, int* skipped = nullptr) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (fs::is_directory(input)) files = list_images(input);
  else if (fs::is_regular_file(input)) files = {input};
  else throw std::runtime_error("translate: input '" + input.string() + "' does not exist");
  if (files.empty()) throw std::runtime_error("translate: no image files in '" + input.string() + "'");
  fs::create_directories(out_dir);
  int written = 0, bad = 0;
  for (const auto& file : files) {
    Image img = read_image_or_skip(file, bad);
    if (img.empty()) continue;
    double scale = size > 0 ? static_cast<double>(size) / std::min(img.width, img.height) : 1.0;
    int w = std::max(4, static_cast<int>(std::lround(img.width * scale / 4.0)) * 4);
    int h = std::max(4, static_cast<int>(std::lround(img.height * scale / 4.0)) * 4);
    img = resize(img, w, h);
    auto out = trainer.translate(to_tensor(img).unsqueeze(0));
    write_png(out_dir / (file.stem().string() + ".png"), from_tensor(out));
    ++written;
  }
  if (skipped) *skipped = bad;
  if (bad) std::cerr << "warning: " << bad << " unreadable image(s) skipped\n";
  return written;
}

/// `evaluate`: scores a checkpoint on the embedded dataset's test split.
inline evaluation::Scores evaluate(Trainer& trainer, int count) {
  const auto& config = trainer.config();
  if (config.data.root != kSyntheticData)
    throw std::runtime_error("evaluate scores models trained on the embedded dataset ('" + kSyntheticData +
                             "'); this checkpoint was trained on '" + config.data.root + "'");
  return evaluation::evaluate([&](const torch::Tensor& x) { return trainer.translate(x); }, count,
                              config.data.synthetic_size, config.seed);
}

/// `synth`: writes the embedded dataset to disk in the CycleGAN/CUT layout.
inline void write_synthetic(const std::filesystem::path& out, int count, int size, uint64_t seed) {
  namespace fs = std::filesystem;
  for (const char* sub : {"trainA", "trainB", "testA", "testB"}) fs::create_directories(out / sub);
  char name[32];
  for (int i = 0; i < count; ++i) {
    std::snprintf(name, sizeof(name), "%05d.png", i);
    write_png(out / "trainA" / name, synthetic::sample(synthetic::Split::kTrain, Domain::kA, i, size, seed));
    write_png(out / "trainB" / name, synthetic::sample(synthetic::Split::kTrain, Domain::kB, i, size, seed));
    write_png(out / "testA" / name, synthetic::sample(synthetic::Split::kTest, Domain::kA, i, size, seed));
    write_png(out / "testB" / name, synthetic::sample(synthetic::Split::kTest, Domain::kB, i, size, seed));
  }
}

}  // namespace trainer

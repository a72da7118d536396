// `patchgcl-trainer evaluate`: scores a checkpoint, on the embedded dataset's test split or with
// FID/KID on real data through the standard FID network (eval/feature_network.hpp).
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/eval/checkpoint_sweep.hpp"
#include "trainer/eval/evaluate.hpp"
#include "trainer/eval/real_evaluation.hpp"
#include "trainer/report/checkpoint_scores.hpp"
#include "trainer/report/run_index.hpp"
#include "trainer/train/checkpoint.hpp"
#include "trainer/train/run_folder.hpp"

#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <vector>

namespace trainer {

/// `evaluate`: scores a checkpoint on the embedded dataset's test split.
inline evaluation::Scores evaluate(Trainer& trainer, int count) {
  if (count < 1) bad_option("--count", "at least 1", std::to_string(count));
  const auto& config = trainer.config();
  if (config.data.root != kSyntheticData)
    throw std::runtime_error(fmt::format(
        "evaluate scores models trained on the embedded dataset ('{}'); this checkpoint was trained on '{}'",
        kSyntheticData, config.data.root));
  return evaluation::evaluate([&](const torch::Tensor& x) { return to_channels(trainer.translate(x), 3); }, count,
                              config.data.synthetic_size, config.seed);
}

/// `evaluate --data DIR --features inception_fid.safetensors`: FID and KID of G(testA) vs testB (real_evaluation.hpp),
/// or of crops of a single-image pair (`single_image`, or a checkpoint trained with --single-image).
/// `crop_size` / `view_size` 0 take the checkpoint's crop size and twice it (its training view).
inline evaluation::RealScores evaluate_real(Trainer& trainer, const std::filesystem::path& data,
                                            const metrics::FeatureFile& features, evaluation::RealDataOptions options,
                                            bool single_image) {
  if (!std::filesystem::is_directory(data))
    throw std::invalid_argument(
        fmt::format("--data: expected a folder with testA/ and testB/ (or trainA/ and trainB/ "
                    "for a single-image run), got '{}', which is not a folder",
                    data.string()));
  metrics::FeatureNetwork net(features, trainer.device());
  // The feature network sees RGB: a grayscale translation is repeated, and the real images are made
  // grayscale first (then repeated) when the model translates to grayscale.
  const auto translate = [&](const torch::Tensor& x) { return to_channels(trainer.translate(x), 3); };
  options.real_channels = trainer.config().output_nc;
  if (!single_image && !trainer.config().data.single_image)
    return evaluation::evaluate_folders(translate, net, data, options);
  if (options.crop_size == 0) options.crop_size = static_cast<int>(trainer.config().data.crop_size);
  if (options.view_size == 0) options.view_size = 2 * options.crop_size;
  return evaluation::evaluate_single_image(translate, net, data, options);
}

/// `evaluate --run RUN --features FILE [--data DIR]`: FID and KID of every checkpoint the run
/// kept (and its ckpt.safetensors) on DIR (default: the run's --data), written to the run folder
/// (checkpoint_scores.{csv,json,html}, best.safetensors, index.html: report/checkpoint_scores.hpp).
/// Returns the table's JSON.
inline std::string evaluate_run(const std::filesystem::path& run_dir, std::filesystem::path data,
                                const metrics::FeatureFile& features, const evaluation::RealDataOptions& options,
                                bool single_image, torch::Device device, bool quiet = false) {
  const auto files =
      evaluation::run_checkpoints(run_dir);  // before the network: a folder without checkpoints fails first
  if (data.empty()) {
    const auto root = checkpoint::read_config(files.front().second).data.root;
    if (root == kSyntheticData)
      bad_option("--data",
                 fmt::format("a folder with testA/ and testB/ for a run on the embedded dataset (synth --output "
                             "DIR writes it as one; run '{}')",
                             run_dir.string()),
                 "none");
    data = root;
  }
  if (!std::filesystem::is_directory(data))
    bad_option("--data", "a folder with testA/ and testB/ (or trainA/ and trainB/ for a single-image run)",
               fmt::format("'{}', which is not a folder", data.string()));
  metrics::FeatureNetwork net(features, device);
  const auto table = evaluation::score_checkpoints(
      run_dir, net, data, options, single_image, device, [&](const evaluation::CheckpointScore& r) {
        if (!quiet)
          std::cerr << fmt::format("step {}: FID {:.4f} KID {:.6f} ({})\n", r.step, r.scores.fid, r.scores.kid.mean,
                                   r.file.string());
      });
  report::write_checkpoint_scores(run_dir, table, features.path.string());
  std::unique_ptr<RunLock>
      lock;  // index.html: now, unless a trainer holds the run folder (it embeds the table at its next sample)
  try {
    lock = std::make_unique<RunLock>(run_dir);
  } catch (const std::runtime_error&) {
    if (!quiet) std::cerr << "index.html: the run is training; its next sample interval adds the table\n";
  }
  if (lock) report::write_run_index(run_dir, table.config);
  if (!quiet)
    std::cerr << fmt::format("best: step {} (FID {:.4f}) -> {}\n", table.rows[table.best].step,
                             table.rows[table.best].scores.fid, (run_dir / "best.safetensors").string());
  return report::checkpoint_table_json(run_dir, table, features.path.string());
}

namespace commands {

struct EvaluateOptions {
  std::string checkpoint, json, data, features, features_torchscript, run;
  std::vector<std::string> folders;
  int count = 100;
  bool single_image = false;
  evaluation::RealDataOptions real;
  EvaluateOptions() { real.crop_size = real.view_size = 0; }  // the checkpoint's crop size and twice it
};

/// Options of the other evaluation (real data vs the embedded dataset, folders vs a single image)
/// are refused rather than ignored. `single_image`: --single-image or a checkpoint trained so.
inline void refuse_ignored_evaluate_options(const std::function<bool(const std::string&)>& given, bool real_data,
                                            bool single_image) {
  auto refuse = [&](const std::string& option, const std::string& why, const std::string& instead) {
    if (given(option)) throw std::invalid_argument(fmt::format("{} has no effect {}: {}", option, why, instead));
  };
  if (!real_data) {
    for (const char* option : {"--single-image", "--size", "--crops", "--crop-size", "--view-size", "--batch",
                               "--kid-subsets", "--kid-subset-size", "--seed"})
      refuse(option, "without --data (the embedded dataset's test split is scored)",
             "it applies to FID/KID on real data: --data FOLDER --features FILE");
    return;
  }
  refuse("--count", "with --data (every test image is scored)",
         "it sets the pairs of the embedded dataset's test split");
  if (single_image)
    refuse("--size", "in single-image evaluation (both images are resized to --view-size, then cropped)",
           "use --view-size and --crop-size");
  else
    for (const char* option : {"--crops", "--crop-size", "--view-size"})
      refuse(option, "in folder evaluation (whole testA/ and testB/ images are compared)",
             "add --single-image to compare crops of one image per domain, or use --size");
}

/// The feature network of `--features FILE` (default) or `--features-torchscript FILE`; refused when
/// missing where FID/KID is scored (`scored`: --data, --run or --folders), or given where it is not.
inline metrics::FeatureFile feature_file(const EvaluateOptions& o, bool scored) {
  const bool torchscript = !o.features_torchscript.empty();
  const metrics::FeatureFile file{
      torchscript ? o.features_torchscript : o.features,
      torchscript ? metrics::FeatureFormat::kTorchScript : metrics::FeatureFormat::kInception};
  if (scored && file.path.empty())
    bad_option("--features",
               fmt::format("the standard FID network's weights with {} ({} writes them; or --features-torchscript "
                           "FILE, a trusted network of your own)",
                           !o.run.empty()       ? "--run"
                           : !o.folders.empty() ? "--folders"
                                                : "--data",
                           kInceptionWeightsCommand),
               "none");
  if (!file.path.empty() && !scored)
    bad_option(file.option(), "given with --data, --run or --folders (the embedded dataset is scored without it)",
               fmt::format("'{}'", file.path.string()));
  return file;
}

inline Command add_evaluate(CLI::App& app) {
  auto o = std::make_shared<EvaluateOptions>();
  auto* cmd = app.add_subcommand(
      "evaluate", "score a model: FID/KID on real data (--data --features), or the embedded dataset's test split");
  auto* checkpoint = cmd->add_option("--checkpoint", o->checkpoint, "ckpt.safetensors of a run (or the run folder)");
  auto* run =
      cmd->add_option("--run", o->run,
                      "score every checkpoint the run kept (train --keep-checkpoints) and its ckpt.safetensors with "
                      "--features; writes RUN/checkpoint_scores.{csv,json}, RUN/best.safetensors, index.html")
          ->excludes(checkpoint);
  cmd->add_option("--folders", o->folders, "FID/KID between two folders of images with --features, no checkpoint")
      ->expected(2)
      ->excludes(checkpoint)
      ->excludes(run);
  cmd->add_option("--count", o->count, "embedded dataset: test pairs")->capture_default_str();
  cmd->add_option("--json", o->json, "also write the scores to this file");
  cmd->add_option("--data", o->data,
                  "real data: a folder with testA/ testB/ (CycleGAN/CUT); with --run, default: the run's");
  auto* features_option =
      cmd->add_option("--features", o->features,
                      "the standard FID network's weights, safetensors (python3 scripts/export-inception.py "
                      "writes them)");
  cmd->add_option("--features-torchscript", o->features_torchscript,
                  "instead of --features: your own feature network, a TorchScript module ([B, 3, H, W] RGB in [0, 1] "
                  "-> [B, D]). TRUSTED FILES ONLY: LibTorch's TorchScript loader is not hardened against crafted files")
      ->excludes(features_option);
  cmd->add_flag("--single-image", o->single_image,
                "one image per domain: compare crops (default for a --single-image run)");
  auto& r = o->real;
  cmd->add_option("--size", r.size, "resize every image to N x N (0: keep; one size per folder)")
      ->capture_default_str();
  cmd->add_option("--crops", r.crops, "single image: crops per side")->capture_default_str();
  cmd->add_option("--crop-size", r.crop_size, "single image: crop side (0: the checkpoint's crop size)");
  cmd->add_option("--view-size", r.view_size, "single image: short side before cropping (0: twice the crop)");
  cmd->add_option("--batch", r.batch, "images per batch through the feature network")->capture_default_str();
  cmd->add_option("--kid-subsets", r.kid.subsets, "KID: random subsets averaged")->capture_default_str();
  cmd->add_option("--kid-subset-size", r.kid.subset_size, "KID: features per subset (capped at the smaller set)")
      ->capture_default_str();
  cmd->add_option("--seed", r.kid.seed, "seed of the KID subsets and the crops")->capture_default_str();
  return {
      cmd, [o, cmd](const GlobalOptions& global) {
        const torch::Device device = parse_device(global.device);
        const bool scored = !o->data.empty() || !o->run.empty() || !o->folders.empty();
        if (o->checkpoint.empty() && o->run.empty() && o->folders.empty())
          bad_option("--checkpoint", "given, or --run RUN or --folders X Y (what to evaluate)", "none");
        if (o->data.empty() && o->count < 1) bad_option("--count", "at least 1", std::to_string(o->count));
        const auto features = feature_file(*o, scored);
        JsonOutput json(o->json);
        if (!o->folders.empty()) {
          metrics::FeatureNetwork net(features, device);
          json.write(evaluation::to_json(evaluation::evaluate_two_folders(net, o->folders[0], o->folders[1], o->real)));
          return 0;
        }
        if (!o->run.empty()) {
          json.write(evaluate_run(o->run, o->data, features, o->real, o->single_image, device));
          return 0;
        }
        auto model = checkpoint::load_model(checkpoint::resolve(o->checkpoint), device);
        refuse_ignored_evaluate_options([cmd](const std::string& name) { return cmd->count(name) > 0; },
                                        !o->data.empty(), o->single_image || model->config().data.single_image);
        json.write(o->data.empty()
                       ? evaluation::to_json(evaluate(*model, o->count))
                       : evaluation::to_json(evaluate_real(*model, o->data, features, o->real, o->single_image)));
        return 0;
      }};
}

}  // namespace commands
}  // namespace trainer

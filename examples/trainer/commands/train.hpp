// `patchgcl-trainer train`: its options (CUT's defaults), their registration, and the start of a
// run, alone or as one rank of a data-parallel run (torchrun's variables; docs/distributed.md).
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/commands/training_run.hpp"
#include "trainer/dist/env.hpp"
#include "trainer/dist/process_group.hpp"

#include <fmt/ranges.h>

#include <chrono>
#include <functional>
#include <memory>

namespace trainer::commands {

struct TrainOptions {
  TrainConfig config;
  RunOptions run;
  std::string mode;  ///< CUT's --CUT_mode: "cut", "fastcut" or "sincut" (refused); empty: the trainer's defaults
  std::string loss = "graph", features = "encoder", negatives = "image";
  std::string backend = "auto";
  int dist_timeout = 300;
};

/// The options of the data and the networks.
inline void add_model_options(CLI::App& cmd, TrainOptions& o) {
  auto& c = o.config;
  cmd.add_option("--mode", o.mode,
                 "CUT's per-mode defaults: cut (lambda 1, identity term), fastcut (lambda 10, no identity term, flip "
                 "equivariance, decay over the last quarter of the steps); options given explicitly win "
                 "(docs/trainer.md#modes)")
      ->check(CLI::IsMember({"cut", "fastcut", "sincut"}));
  cmd.add_option("--data", c.data.root, "'synthetic' or a folder with trainA/ trainB/ [testA/ testB/]")->capture_default_str();
  cmd.add_flag("--single-image", c.data.single_image, "one image per domain, random crops at random scales");
  cmd.add_option("--min-zoom", c.data.min_zoom, "smallest single-image crop, fraction of the short side")->capture_default_str();
  cmd.add_option("--load-size", c.data.load_size, "resize folder images to this square size")->capture_default_str();
  cmd.add_option("--crop-size", c.data.crop_size, "random crop size (multiple of 4)")->capture_default_str();
  cmd.add_flag("!--no-flip", c.data.flip, "disable random horizontal flips");
  cmd.add_option("--synthetic-size", c.data.synthetic_size, "side of the embedded dataset's images")->capture_default_str();
  cmd.add_option("--synthetic-count", c.data.synthetic_count, "images per domain of the embedded dataset")->capture_default_str();
  cmd.add_option("--loss", o.loss, "contrastive term")->check(CLI::IsMember({"graph", "patchnce", "put"}))->capture_default_str();
  cmd.add_option("--features", o.features, "contrastive features: the generator's encoder or VGG16")
      ->check(CLI::IsMember({"encoder", "vgg16"}))->capture_default_str();
  cmd.add_option("--negatives", o.negatives,
                 "InfoNCE negatives of a patch: the other patches of its image, of the minibatch (CUT's "
                 "--nce_includes_all_negatives_from_minibatch), or of every process's minibatch")
      ->check(CLI::IsMember({"image", "minibatch", "global"}))->capture_default_str();
  cmd.add_option("--vgg-weights", o.run.vgg_weights, "VGG16 weight file (python3 scripts/fetch-vgg16.py writes it)");
  cmd.add_option("--num-patches", c.num_patches, "sampled locations per layer")->capture_default_str();
  cmd.add_option("--ngf", c.ngf, "generator width")->capture_default_str();
  cmd.add_option("--n-blocks", c.n_blocks, "generator residual blocks")->capture_default_str();
  cmd.add_option("--ndf", c.ndf, "discriminator width")->capture_default_str();
  cmd.add_option("--input-nc", c.input_nc, "channels of domain A: 1 (grayscale) or 3 (RGB)")->capture_default_str();
  cmd.add_option("--output-nc", c.output_nc, "channels of domain B and of the translation: 1 or 3")->capture_default_str();
}

/// The options of the optimisation, the run folder and the processes.
inline void add_run_options(CLI::App& cmd, TrainOptions& o) {
  auto& c = o.config;
  cmd.add_option("--run", o.run.run_dir, "run folder (log.jsonl, samples/, index.html, ckpt.safetensors)")->capture_default_str();
  cmd.add_flag("--resume", o.run.resume, "continue the checkpoint in the run folder exactly");
  cmd.add_flag("--auto-resume", o.run.auto_resume,
               "continue the run folder's checkpoint if it has one, else start (the same command for every restart)");
  cmd.add_option("--lambda", c.lambda_nce, "contrastive weight (default: 1 with encoder features, 0.1 with vgg16)");
  cmd.add_option("--lambda-gan", c.lambda_gan, "adversarial weight")->capture_default_str();
  cmd.add_flag("--nce-idt,!--no-nce-idt", c.nce_idt, "keep or drop the identity term L_c(Y, G(Y)) (default: kept)");
  cmd.add_flag("--flip-equivariance,!--no-flip-equivariance", c.flip_equivariance,
               "FastCUT's flip equivariance (default: off)");
  cmd.add_option("--batch-size", c.batch_size, "images per domain per step")->capture_default_str();
  cmd.add_option("--steps", c.steps, "optimisation steps (0 writes the initial model)")->capture_default_str();
  cmd.add_option("--decay-steps", c.decay_steps, "linear learning-rate decay over the last N steps (default: steps/2)");
  cmd.add_option("--lr", c.lr, "Adam learning rate")->capture_default_str();
  cmd.add_option("--seed", c.seed, "seed of initialisation, sampling and augmentation")->capture_default_str();
  cmd.add_option("--log-every", o.run.log_every, "steps between log lines")->capture_default_str();
  cmd.add_option("--sample-every", o.run.sample_every, "steps between sample grids / index.html")->capture_default_str();
  cmd.add_option("--checkpoint-every", o.run.checkpoint_every, "steps between checkpoints")->capture_default_str();
  cmd.add_option("--keep-checkpoints", o.run.keep_checkpoints,
                 "also keep up to N earlier checkpoints in RUN/checkpoints/, evenly spaced over the run, for "
                 "evaluate --run (0: only ckpt.safetensors)")->capture_default_str();
  cmd.add_option("--backend", o.backend, "distributed (torchrun's variables set): auto (NCCL on CUDA), gloo or nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))->capture_default_str();
  cmd.add_flag("!--no-overlap", o.run.overlap_gradients,
               "distributed: all-reduce the gradients after backward, not bucket by bucket during it");
  cmd.add_option("--dist-timeout", o.dist_timeout, "distributed: seconds for the rendezvous and each collective")
      ->capture_default_str();
}

/// The configuration the options describe, and how to join the other processes (none set: one).
inline Connect resolve(TrainOptions& o, torch::Device& device) {
  auto& c = o.config;
  c.loss = parse_loss(o.loss);
  c.features = parse_features(o.features);
  c.negatives = parse_negatives(o.negatives);
  c.data.seed = c.seed;
  if (c.data.root == kSyntheticData) c.data.load_size = c.data.crop_size = c.data.synthetic_size;
  const auto env = dist::read_env();  // torchrun's variables
  if (!env.active) return {};
  if (o.dist_timeout < 1) bad_option("--dist-timeout", "at least 1 (seconds)", std::to_string(o.dist_timeout));
  if (device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  const auto backend = dist::resolve_backend(dist::parse_backend(o.backend), device);
  const auto timeout = std::chrono::seconds(o.dist_timeout);
  return [=] { return std::make_unique<dist::Context>(env, backend, device, timeout); };
}

/// CUT's per-mode defaults (models/cut_model.py, modify_commandline_options) for `mode`; an option
/// given on the command line (`given`) keeps its value. Returns the line `train` prints: the mode and
/// what it resolved to. SinCUT is refused: its networks and losses are not this trainer's.
inline std::string apply_mode(const std::string& mode, TrainConfig& c,
                              const std::function<bool(const std::string&)>& given) {
  if (mode.empty()) return {};
  if (mode == "sincut")
    bad_option("--mode", "cut or fastcut: sincut needs SinCUT's StyleGAN2 generator and discriminator, its R1 gradient "
               "penalty, non-saturating GAN loss and identity-preservation loss, which this trainer does not implement "
               "(for CUT's networks on random-scale crops of one image pair use --mode cut --single-image --data FOLDER)",
               "sincut");
  const bool fast = mode == "fastcut";
  if (!given("--lambda")) c.lambda_nce = fast ? 10.0 : 1.0;
  if (!given("--nce-idt")) c.nce_idt = !fast;
  if (!given("--flip-equivariance")) c.flip_equivariance = fast;
  // CUT: 200 + 200 epochs (decay over the last half, the trainer's default); FastCUT: 150 + 50.
  if (!given("--decay-steps")) c.decay_steps = fast ? c.steps / 4 : -1;
  std::vector<std::string> explicit_options;
  for (const char* option : {"--lambda", "--nce-idt", "--flip-equivariance", "--decay-steps"})
    if (given(option)) explicit_options.push_back(option);
  return fmt::format("mode {}: lambda {}, nce_idt {}, flip_equivariance {}, decay_steps {} of {}{}",
                     mode, format_number(c.lambda()), c.nce_idt ? "on" : "off", c.flip_equivariance ? "on" : "off",
                     c.decay(), c.steps,
                     explicit_options.empty() ? std::string(" (the mode's defaults)")
                                              : fmt::format(" (given explicitly: {})", fmt::join(explicit_options, " ")));
}

/// Options that would do nothing in the run's mode are refused rather than ignored: the error names
/// the option, why it has no effect there, and what to use instead. `given` says whether an option
/// was on the command line; `distributed` whether torchrun's variables are set.
inline void refuse_ignored_options(const std::function<bool(const std::string&)>& given, const TrainOptions& o,
                                   bool distributed) {
  const auto& d = o.config.data;
  auto refuse = [&](const std::string& option, const std::string& why, const std::string& instead) {
    if (given(option)) throw std::invalid_argument(fmt::format("{} has no effect {}: {}", option, why, instead));
  };
  if (d.root == kSyntheticData) {
    const std::string why = "with the embedded dataset (--data synthetic), whose images are --synthetic-size square";
    for (const char* option : {"--crop-size", "--load-size"})
      refuse(option, why, "set --synthetic-size, or train on a folder with --data FOLDER");
    refuse("--single-image", why, "single-image training needs --data FOLDER with one image in trainA/ and trainB/");
    refuse("--min-zoom", why, "--min-zoom sets the crops of --single-image training on --data FOLDER");
  } else {
    for (const char* option : {"--synthetic-size", "--synthetic-count"})
      refuse(option, fmt::format("with --data '{}' (it sizes the embedded dataset)", d.root),
             "the folder's images are resized to --load-size and cropped to --crop-size");
    if (d.single_image)
      refuse("--load-size", "with --single-image (crops are taken from the whole image at random scales)",
             "--min-zoom sets the smallest crop, --crop-size its side");
    else
      refuse("--min-zoom", "without --single-image (folder images are resized to --load-size, then cropped)",
             "add --single-image for random-scale crops of one image per domain");
  }
  if (o.features != "vgg16")
    refuse("--vgg-weights", fmt::format("with --features {} (only VGG16 features load weights)", o.features),
           "add --features vgg16 to use them");
  if (!distributed)
    for (const char* option : {"--backend", "--dist-timeout", "--no-overlap"})
      refuse(option, "in a run of one process (torchrun's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are not set)",
             "start the ranks with torchrun or `patchgcl-trainer launch`, or leave the option out");
}

inline Command add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "train a translation model (CUT defaults)");
  add_run_options(*cmd, *o);
  add_model_options(*cmd, *o);
  return {cmd, [o, cmd](const GlobalOptions& global) {
            const auto given = [cmd](const std::string& name) { return cmd->count(name) > 0; };
            refuse_ignored_options(given, *o, dist::read_env().active);
            const std::string mode_line = apply_mode(o->mode, o->config, given);
            if (!mode_line.empty() && dist::read_env().rank == 0) fmt::print("{}\n", mode_line);
            torch::Device device = parse_device(global.device);
            const Connect connect = resolve(*o, device);
            train(o->config, o->run, device, connect);
            if (const int signo = interrupted_by_signal()) return StopOnSignal::exit_status(signo);
            if (dist::read_env().rank == 0)
              fmt::print("run folder: {} (open {})\n", o->run.run_dir.string(), (o->run.run_dir / "index.html").string());
            return 0;
          }};
}

}  // namespace trainer::commands

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
#include <map>
#include <memory>
#include <string>

namespace trainer::commands {

struct TrainOptions {
  TrainConfig config;
  /// The text given for each option of config_options(), by key, read into `config` by read_given().
  std::map<std::string, std::string> given;
  RunOptions run;
  std::string mode;  ///< CUT's --CUT_mode: "cut", "fastcut" or "sincut" (refused); empty: the trainer's defaults
  std::string backend = "auto";
  int dist_timeout = 300;
};

/// The options of the training configuration, one per row of config_options(): each keeps the text
/// given (`given`, by key), read into the configuration by read_given() with the row's parser, so
/// that a value of the wrong kind is refused like a checkpoint's, naming the option.
inline void add_config_options(CLI::App& cmd, std::map<std::string, std::string>& given) {
  for (const auto& spec : config_options()) {
    const std::string key = spec.key;
    if (spec.kind == OptionKind::kFlag) {
      cmd.add_flag_function(
          spec.names, [&given, key](int64_t count) { given[key] = count > 0 ? "1" : "0"; }, spec.help);
      continue;
    }
    auto* option = cmd.add_option_function<std::string>(
        spec.names, [&given, key](const std::string& text) { given[key] = text; }, spec.help);
    option->type_name(spec.kind == OptionKind::kInteger ? "INT" : spec.kind == OptionKind::kReal ? "FLOAT" : "TEXT");
    if (spec.help_shows_default) option->default_str(spec.text(TrainConfig{}));
    if (spec.kind == OptionKind::kChoice) option->check(CLI::IsMember(spec.choices));
  }
}

/// Reads the options given on the command line into `config`.
inline void read_given(const std::map<std::string, std::string>& given, TrainConfig& config) {
  read_options(config_options(), given, config, [](const OptionSpec<TrainConfig>& o) { return o.flag(); });
}

/// The options of the run folder, the mode and the processes.
inline void add_run_options(CLI::App& cmd, TrainOptions& o) {
  cmd.add_option("--run", o.run.run_dir, "run folder (log.jsonl, samples/, index.html, ckpt.safetensors)")
      ->capture_default_str();
  cmd.add_flag("--resume", o.run.resume, "continue the checkpoint in the run folder exactly");
  cmd.add_flag("--auto-resume", o.run.auto_resume,
               "continue the run folder's checkpoint if it has one, else start (the same command for every restart)");
  cmd.add_option("--mode", o.mode,
                 "per-mode defaults: cut (CUT: lambda 1, identity term), fastcut (FastCUT: lambda 10, no identity "
                 "term, flip equivariance, decay over the last quarter of the steps), patchgcl (the released PatchGCL "
                 "command: graph loss on VGG16 features, lambda 0.1, identity term); options given explicitly win "
                 "(docs/trainer.md#modes)")
      ->check(CLI::IsMember({"cut", "fastcut", "patchgcl", "sincut"}));
  cmd.add_option("--vgg-weights", o.run.vgg_weights,
                 fmt::format("VGG16 weight file of --features vgg16 (default: {}, which {} writes)",
                             default_vgg16_weights(), kVGG16WeightsCommand));
  cmd.add_option("--log-every", o.run.log_every, "steps between log lines")->capture_default_str();
  cmd.add_option("--sample-every", o.run.sample_every, "steps between sample grids / index.html")
      ->capture_default_str();
  cmd.add_option("--checkpoint-every", o.run.checkpoint_every, "steps between checkpoints")->capture_default_str();
  cmd.add_option("--keep-checkpoints", o.run.keep_checkpoints,
                 "also keep up to N earlier checkpoints in RUN/checkpoints/, evenly spaced over the run, for "
                 "evaluate --run (0: only ckpt.safetensors)")
      ->capture_default_str();
  cmd.add_option("--backend", o.backend, "distributed (torchrun's variables set): auto (NCCL on CUDA), gloo or nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))
      ->capture_default_str();
  cmd.add_flag("!--no-overlap", o.run.overlap_gradients,
               "distributed: all-reduce the gradients after backward, not bucket by bucket during it");
  cmd.add_option("--dist-timeout", o.dist_timeout, "distributed: seconds for the rendezvous and each collective")
      ->capture_default_str();
}

/// How to join the other processes (torchrun's variables; none set: one process).
inline Connect resolve(TrainOptions& o, torch::Device& device) {
  o.config.derive_data_options();
  const auto env = dist::read_env();  // torchrun's variables
  if (!env.active) return {};
  if (o.dist_timeout < 1) bad_option("--dist-timeout", "at least 1 (seconds)", std::to_string(o.dist_timeout));
  if (device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  const auto backend = dist::resolve_backend(dist::parse_backend(o.backend), device);
  const auto timeout = std::chrono::seconds(o.dist_timeout);
  return [=] { return std::make_unique<dist::Context>(env, backend, device, timeout); };
}

/// The graph loss's settings the trainer leaves at GraphNCELossOptions' defaults, which are the
/// released PatchGCL command's (--nonzero_th 0.1 --num_hop 2 --pooling_num 1 --pooling_ratio '1,0.5'
/// --down_scale 4), as `train --mode patchgcl` prints them.
inline std::string graph_loss_settings(int64_t num_patches) {
  const auto o = patchgcl::GraphNCELossOptions({1});
  return fmt::format("threshold {}, hops {}, pooling levels {} (level weights {}, down-scale {}), num_patches {}",
                     format_number(o.adjacency().threshold()), o.hops(), o.pooling_levels(),
                     fmt::join(o.level_weights(), ", "), o.down_scale(), num_patches);
}

/// Per-mode defaults for `mode`: CUT's (models/cut_model.py, modify_commandline_options) for cut and
/// fastcut; for patchgcl the released PatchGCL command's (the graph loss on VGG16 features, lambda
/// 0.1, identity term, CUT's other defaults). An option given on the command line (`given`) keeps
/// its value. Returns the line `train` prints: the mode and what it resolved to. SinCUT is refused:
/// its networks and losses are not this trainer's.
inline std::string apply_mode(const std::string& mode, TrainConfig& c,
                              const std::function<bool(const std::string&)>& given) {
  if (mode.empty()) return {};
  if (mode == "sincut")
    bad_option(
        "--mode",
        "cut, fastcut or patchgcl: sincut needs SinCUT's StyleGAN2 generator and discriminator, its R1 gradient "
        "penalty, non-saturating GAN loss and identity-preservation loss, which this trainer does not implement "
        "(for CUT's networks on random-scale crops of one image pair use --mode cut --single-image --data FOLDER)",
        "sincut");
  const bool fast = mode == "fastcut", paper = mode == "patchgcl";
  if (paper && !given("--loss")) c.loss = LossKind::kGraph;
  if (paper && !given("--features")) c.features = FeatureKind::kVGG16;
  if (!given("--lambda")) c.lambda_nce = fast ? 10.0 : paper ? 0.1 : 1.0;
  if (!given("--nce-idt")) c.nce_idt = !fast;
  if (!given("--flip-equivariance")) c.flip_equivariance = fast;
  // CUT and PatchGCL: 200 + 200 epochs (decay over the last half, the trainer's default); FastCUT: 150 + 50.
  if (!given("--decay-steps")) c.decay_steps = fast ? c.steps / 4 : -1;
  std::vector<std::string> mode_sets = {"--lambda", "--nce-idt", "--flip-equivariance", "--decay-steps"};
  if (paper) mode_sets.insert(mode_sets.begin(), {"--loss", "--features"});
  std::vector<std::string> explicit_options;
  for (const auto& option : mode_sets)
    if (given(option)) explicit_options.push_back(option);
  std::string line = fmt::format("mode {}: ", mode);
  if (paper) line += fmt::format("loss {}, features {}, ", to_string(c.loss), to_string(c.features));
  line += fmt::format("lambda {}, nce_idt {}, flip_equivariance {}, decay_steps {} of {}", format_number(c.lambda()),
                      c.nce_idt ? "on" : "off", c.flip_equivariance ? "on" : "off", c.decay(), c.steps);
  if (paper && c.loss == LossKind::kGraph) line += "; graph loss: " + graph_loss_settings(c.num_patches);
  return line + (explicit_options.empty() ? std::string(" (the mode's defaults)")
                                          : fmt::format(" (given explicitly: {})", fmt::join(explicit_options, " ")));
}

/// Options that would do nothing in the run's mode are refused rather than ignored: the error names
/// the option, why it has no effect there, and what to use instead (a configuration option's row
/// says where it applies). `given` says whether an option was on the command line; `distributed`
/// whether torchrun's variables are set.
inline void refuse_ignored_options(const std::function<bool(const std::string&)>& given, const TrainOptions& o,
                                   bool distributed) {
  auto refuse = [&](const std::string& option, const std::string& why) {
    if (given(option)) throw std::invalid_argument(fmt::format("{} has no effect {}", option, why));
  };
  for (const auto& spec : config_options())
    if (!spec.applies(o.config)) refuse(spec.flag(), spec.unused(o.config));
  if (o.config.features != FeatureKind::kVGG16)
    refuse("--vgg-weights",
           fmt::format("with --features {} (only VGG16 features load weights): add --features vgg16 to "
                       "use them",
                       to_string(o.config.features)));
  if (!distributed)
    for (const char* option : {"--backend", "--dist-timeout", "--no-overlap"})
      refuse(option,
             "in a run of one process (torchrun's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are not set): "
             "start the ranks with torchrun or `patchgcl-trainer launch`, or leave the option out");
}

inline Command add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "train a translation model (CUT defaults)");
  add_run_options(*cmd, *o);
  add_config_options(*cmd, o->given);
  return {cmd, [o, cmd](const GlobalOptions& global) {
            const auto given = [cmd](const std::string& name) { return cmd->count(name) > 0; };
            read_given(o->given, o->config);
            const std::string mode_line = apply_mode(o->mode, o->config, given);
            refuse_ignored_options(given, *o, dist::read_env().active);
            if (!mode_line.empty() && dist::read_env().rank == 0) fmt::print("{}\n", mode_line);
            torch::Device device = parse_device(global.device);
            const Connect connect = resolve(*o, device);
            train(o->config, o->run, device, connect);
            if (const int signo = interrupted_by_signal()) return StopOnSignal::exit_status(signo);
            if (dist::read_env().rank == 0)
              fmt::print("run folder: {} (open {})\n", o->run.run_dir.string(),
                         (o->run.run_dir / "index.html").string());
            return 0;
          }};
}

}  // namespace trainer::commands

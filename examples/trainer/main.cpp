// patchgcl-trainer: unpaired image-to-image translation with the PatchGCL / CUT / PUT losses.
//
//   patchgcl-trainer train     --run runs/demo [--data synthetic|DIR] [--loss graph|patchnce|put] ...
//   patchgcl-trainer translate --checkpoint runs/demo/ckpt.pt --input IMG_OR_DIR --output DIR
//   patchgcl-trainer evaluate  --checkpoint runs/demo/ckpt.pt
//   patchgcl-trainer synth     --output DIR      (the embedded dataset, written as PNG folders)
//   patchgcl-trainer explain   --checkpoint RUN --image FILE --out DIR [--layer L] [--k K]  (the patch graph, Fig. 9)
//   patchgcl-trainer launch    --nproc-per-node N [--nnodes M ...] -- train ...   (docs/distributed.md)
// Exit status: 0 when the command did all it was asked, 1 with an "error: ..." line otherwise,
// 128 + signal (130, 143) for a training run stopped by SIGINT/SIGTERM after its checkpoint.
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include "commands.hpp"
#include "distributed.hpp"
#include "launch.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace {
/// Opens --json before any work, so an unwritable path fails first (it wrote nothing and exited 0).
std::ofstream open_json(const std::string& path) {
  std::ofstream json;
  if (path.empty()) return json;
  json.open(path, std::ios::trunc);
  if (!json) trainer::bad_option("--json", "a file this process can write", fmt::format("'{}': {}", path, std::strerror(errno)));
  return json;
}
void write_json(std::ofstream& json, const std::string& path, const std::string& text) {
  if (!json.is_open()) return;
  json << text << "\n";
  json.close();
  if (!json) throw std::runtime_error(fmt::format("--json: writing '{}' failed: {}", path, std::strerror(errno)));
}
}  // namespace

int main(int argc, char** argv) {
  using namespace trainer;
  CLI::App app{"patchgcl-trainer: unpaired image-to-image translation with graph (PatchGCL) and patch (CUT, PUT) "
               "contrastive losses"};
  app.require_subcommand(1);
  std::string device_name = "cpu";
  int threads = 0;
  app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for LibTorch and OpenBLAS (0: their defaults; at most the CPUs available)");
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  app.add_option("--max-image-pixels", max_image_pixels,
                 "larger images (width x height, from the file's header) are skipped with a warning")
      ->capture_default_str();

  // ---- train ----
  TrainConfig config;
  RunOptions run;
  std::string loss = "graph", features = "encoder";
  auto* train_cmd = app.add_subcommand("train", "train a translation model (CUT defaults)");
  train_cmd->add_option("--run", run.run_dir, "run folder (log.jsonl, samples/, index.html, ckpt.pt)")->capture_default_str();
  train_cmd->add_flag("--resume", run.resume, "continue the checkpoint in the run folder exactly");
  train_cmd->add_option("--data", config.data.root, "'synthetic' or a folder with trainA/ trainB/ [testA/ testB/]")->capture_default_str();
  train_cmd->add_flag("--single-image", config.data.single_image, "one image per domain, random crops at random scales");
  train_cmd->add_option("--min-zoom", config.data.min_zoom, "smallest single-image crop, fraction of the short side")->capture_default_str();
  train_cmd->add_option("--load-size", config.data.load_size, "resize folder images to this square size")->capture_default_str();
  train_cmd->add_option("--crop-size", config.data.crop_size, "random crop size (multiple of 4)")->capture_default_str();
  train_cmd->add_flag("!--no-flip", config.data.flip, "disable random horizontal flips");
  train_cmd->add_option("--synthetic-size", config.data.synthetic_size, "side of the embedded dataset's images")->capture_default_str();
  train_cmd->add_option("--synthetic-count", config.data.synthetic_count, "images per domain of the embedded dataset")->capture_default_str();
  train_cmd->add_option("--loss", loss, "contrastive term")->check(CLI::IsMember({"graph", "patchnce", "put"}))->capture_default_str();
  train_cmd->add_option("--features", features, "contrastive features: the generator's encoder or VGG16")
      ->check(CLI::IsMember({"encoder", "vgg16"}))->capture_default_str();
  train_cmd->add_option("--vgg-weights", run.vgg_weights, "VGG16 weight file (docs/trainer.md has the export one-liner)");
  train_cmd->add_option("--lambda", config.lambda_nce, "contrastive weight (default: 1 with encoder features, 0.1 with vgg16)");
  train_cmd->add_option("--lambda-gan", config.lambda_gan, "adversarial weight")->capture_default_str();
  train_cmd->add_flag("!--no-nce-idt", config.nce_idt, "drop the identity term L_c(Y, G(Y))");
  train_cmd->add_option("--num-patches", config.num_patches, "sampled locations per layer")->capture_default_str();
  train_cmd->add_option("--ngf", config.ngf, "generator width")->capture_default_str();
  train_cmd->add_option("--n-blocks", config.n_blocks, "generator residual blocks")->capture_default_str();
  train_cmd->add_option("--ndf", config.ndf, "discriminator width")->capture_default_str();
  train_cmd->add_option("--batch-size", config.batch_size, "images per domain per step")->capture_default_str();
  train_cmd->add_option("--steps", config.steps, "optimisation steps (0 writes the initial model)")->capture_default_str();
  train_cmd->add_option("--decay-steps", config.decay_steps, "linear learning-rate decay over the last N steps (default: steps/2)");
  train_cmd->add_option("--lr", config.lr, "Adam learning rate")->capture_default_str();
  train_cmd->add_option("--seed", config.seed, "seed of initialisation, sampling and augmentation")->capture_default_str();
  train_cmd->add_option("--log-every", run.log_every, "steps between log lines")->capture_default_str();
  train_cmd->add_option("--sample-every", run.sample_every, "steps between sample grids / index.html")->capture_default_str();
  train_cmd->add_option("--checkpoint-every", run.checkpoint_every, "steps between checkpoints")->capture_default_str();
  std::string backend = "auto";
  int dist_timeout = 300;
  train_cmd->add_option("--backend", backend, "distributed (torchrun's variables set): auto (NCCL on CUDA), gloo or nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))->capture_default_str();
  train_cmd->add_option("--dist-timeout", dist_timeout, "distributed: seconds for the rendezvous and each collective")
      ->capture_default_str();

  // ---- translate ----
  std::string checkpoint_path, input, output, vgg_eval;
  int size = 0;
  auto* translate_cmd = app.add_subcommand("translate", "translate an image or a folder of images");
  translate_cmd->add_option("--checkpoint", checkpoint_path, "ckpt.pt of a run")->required();
  translate_cmd->add_option("--input", input, "image file or folder")->required();
  translate_cmd->add_option("--output", output, "output folder")->required();
  translate_cmd->add_option("--size", size, "resize the short side to this first (0: keep)");

  // ---- evaluate ----
  int count = 100;
  std::string json_out;
  std::string eval_data, eval_features;
  bool eval_single = false;
  evaluation::RealDataOptions real;
  real.crop_size = real.view_size = 0;  // the checkpoint's crop size and twice it
  auto* evaluate_cmd = app.add_subcommand(
      "evaluate", "score a model: FID/KID on real data (--data --features), or the embedded dataset's test split");
  evaluate_cmd->add_option("--checkpoint", checkpoint_path, "ckpt.pt of a run")->required();
  evaluate_cmd->add_option("--count", count, "embedded dataset: test pairs")->capture_default_str();
  evaluate_cmd->add_option("--json", json_out, "also write the scores to this file");
  auto* data_opt = evaluate_cmd->add_option("--data", eval_data, "real data: a folder with testA/ testB/ (CycleGAN/CUT)");
  evaluate_cmd->add_option("--features", eval_features, "TorchScript feature network (scripts/export_inception.py)")
      ->needs(data_opt);
  evaluate_cmd->add_flag("--single-image", eval_single, "one image per domain: compare crops (default for a --single-image run)");
  evaluate_cmd->add_option("--size", real.size, "resize every image to N x N (0: keep; one size per folder)")->capture_default_str();
  evaluate_cmd->add_option("--crops", real.crops, "single image: crops per side")->capture_default_str();
  evaluate_cmd->add_option("--crop-size", real.crop_size, "single image: crop side (0: the checkpoint's crop size)");
  evaluate_cmd->add_option("--view-size", real.view_size, "single image: short side before cropping (0: twice the crop)");
  evaluate_cmd->add_option("--batch", real.batch, "images per batch through the feature network")->capture_default_str();
  evaluate_cmd->add_option("--kid-subsets", real.kid.subsets, "KID: random subsets averaged")->capture_default_str();
  evaluate_cmd->add_option("--kid-subset-size", real.kid.subset_size, "KID: features per subset (capped at the smaller set)")
      ->capture_default_str();
  evaluate_cmd->add_option("--seed", real.kid.seed, "seed of the KID subsets and the crops")->capture_default_str();

  // ---- synth ----
  int synth_count = 100, synth_size = 64;
  uint64_t synth_seed = 0;
  auto* synth_cmd = app.add_subcommand("synth", "write the embedded dataset as trainA/ trainB/ testA/ testB/ PNGs");
  synth_cmd->add_option("--output", output, "output folder")->required();
  synth_cmd->add_option("--count", synth_count, "images per folder")->capture_default_str();
  synth_cmd->add_option("--size", synth_size, "image side")->capture_default_str();
  synth_cmd->add_option("--seed", synth_seed, "seed")->capture_default_str();

  // ---- explain ----
  std::string explain_image_file, explain_out, explain_vgg;
  explain::ExplainOptions explain_options;
  auto* explain_cmd = app.add_subcommand(
      "explain", "draw the patch graph of a --loss graph checkpoint over an image (docs/diagnostics.md, paper Fig. 9)");
  explain_cmd->add_option("--checkpoint", checkpoint_path, "run folder or its ckpt.pt")->required();
  explain_cmd->add_option("--image", explain_image_file, "image file")->required();
  explain_cmd->add_option("--out", explain_out, "output folder: PNGs and index.html")->required();
  explain_cmd->add_option("--layer", explain_options.layer, "contrastive feature layer (-1: the deepest)")->capture_default_str();
  explain_cmd->add_option("--k", explain_options.k, "Laplacian eigenvectors drawn")->capture_default_str();
  explain_cmd->add_option("--size", explain_options.size, "short side the image is resized to (0: the training size)")
      ->capture_default_str();
  explain_cmd->add_option("--grid", explain_options.grid, "at most grid x grid nodes")->capture_default_str();
  explain_cmd->add_option("--vgg-weights", explain_vgg, "VGG16 weight file, for a --features vgg16 checkpoint");


  // ---- launch ----
  launch::LaunchOptions lo;
  auto* launch_cmd = app.add_subcommand("launch", "start the ranks of this node with torchrun's variables: "
                                                  "launch --nproc-per-node N [options] -- train ...");
  launch_cmd->add_option("--nproc-per-node", lo.nproc_per_node, "ranks on this node")->capture_default_str();
  launch_cmd->add_option("--nnodes", lo.nnodes, "nodes (machines), each running this launcher")->capture_default_str();
  launch_cmd->add_option("--node-rank", lo.node_rank, "this node's index in [0, --nnodes)")->capture_default_str();
  launch_cmd->add_option("--master-addr", lo.master_addr, "address of node 0 (its rank 0 serves the rendezvous)")->capture_default_str();
  launch_cmd->add_option("--master-port", lo.master_port, "rendezvous port (0: a free one, one node only)")->capture_default_str();
  launch_cmd->add_option("--grace", lo.grace_s, "seconds the other ranks get to stop after one failed")->capture_default_str();
  // `launch ... -- ARGS`: everything after the first `--` is the ranks' command line.
  int own_argc = argc;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      own_argc = i;
      lo.args.assign(argv + i + 1, argv + argc);
      break;
    }
  CLI11_PARSE(app, own_argc, argv);
  if (own_argc != argc && !*launch_cmd) {
    fmt::print(stderr, "error: `--` only separates launch's options from the ranks' command\n");
    return 1;
  }
  try {
    if (threads < 0) bad_option("--threads", "at least 0 (0: LibTorch's default)", std::to_string(threads));
    if (threads > available_cpus()) {
      fmt::print(stderr, "warning: --threads {} is more than the {} CPU(s) available to this process; using {}\n",
                 threads, available_cpus(), available_cpus());
      threads = available_cpus();
    }
    // LibTorch's pool and, where Debian's LibTorch (BLAS_INFO=generic) leaves it alone, OpenBLAS's.
    if (threads > 0) patchgcl::set_num_threads(threads);
    if (max_image_pixels < 1) bad_option("--max-image-pixels", "at least 1", std::to_string(max_image_pixels));
    decode_limits().max_pixels = max_image_pixels;
    if (*synth_cmd) {
      write_synthetic(output, synth_count, synth_size, synth_seed);
      fmt::print("wrote {} images to {}\n", 4 * synth_count, output);
      return 0;
    }
    if (*launch_cmd) return launch::run(lo, launch::self_exe());
    torch::Device device = parse_device(device_name);
    if (*train_cmd) {
      config.loss = parse_loss(loss);
      config.features = parse_features(features);
      config.data.seed = config.seed;
      if (config.data.root == kSyntheticData) config.data.load_size = config.data.crop_size = config.data.synthetic_size;
      const auto env = dist::read_env();  // torchrun's variables; none set: one process
      Connect connect;
      if (env.active) {
        if (dist_timeout < 1) bad_option("--dist-timeout", "at least 1 (seconds)", std::to_string(dist_timeout));
        if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
        const auto b = dist::resolve_backend(dist::parse_backend(backend), device);
        connect = [=] { return std::make_unique<dist::Context>(env, b, device, std::chrono::seconds(dist_timeout)); };
      }
      train(config, run, device, connect);
      if (const int signo = interrupted_by_signal()) return StopOnSignal::exit_status(signo);
      if (env.rank == 0)
        fmt::print("run folder: {} (open {})\n", run.run_dir.string(), (run.run_dir / "index.html").string());
    } else if (*explain_cmd) {
      const auto summary = explain::explain(checkpoint_path, explain_image_file, explain_out, explain_options, device, explain_vgg);
      fmt::print("{}\nwrote {}\n", summary, (std::filesystem::path(explain_out) / "index.html").string());
    } else if (*translate_cmd) {
      auto model = checkpoint::load_model(checkpoint::resolve(checkpoint_path), device);
      int skipped = 0;
      const int n = translate(*model, input, output, size, &skipped);
      fmt::print("translated {} image(s) into {}\n", n, output);
      if (skipped > 0) {
        fmt::print(stderr, "error: {} of {} image(s) could not be translated (warnings above)\n", skipped, n + skipped);
        return 1;
      }
    } else if (*evaluate_cmd && !eval_data.empty()) {
      if (eval_features.empty())
        bad_option("--features", "a TorchScript feature network with --data (scripts/export_inception.py writes one)", "none");
      std::ofstream json_file = open_json(json_out);
      auto model = checkpoint::load_model(checkpoint::resolve(checkpoint_path), device);
      const auto json = evaluation::to_json(evaluate_real(*model, eval_data, eval_features, real, eval_single));
      fmt::print("{}\n", json);
      write_json(json_file, json_out, json);
    } else if (*evaluate_cmd) {
      if (count < 1) bad_option("--count", "at least 1", std::to_string(count));
      std::ofstream json_file = open_json(json_out);
      auto model = checkpoint::load_model(checkpoint::resolve(checkpoint_path), device);
      const auto json = evaluation::to_json(evaluate(*model, count));
      fmt::print("{}\n", json);
      write_json(json_file, json_out, json);
    }
  } catch (const c10::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}

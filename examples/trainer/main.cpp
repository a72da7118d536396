// patchgcl-trainer: unpaired image-to-image translation with the PatchGCL / CUT / PUT losses.
//
//   patchgcl-trainer train     --run runs/demo [--data synthetic|DIR] [--loss graph|patchnce|put] ...
//   patchgcl-trainer translate --checkpoint runs/demo/ckpt.safetensors --input IMG_OR_DIR --output DIR
//   patchgcl-trainer evaluate  --checkpoint runs/demo/ckpt.safetensors [--data DIR --features FID.safetensors]
//   patchgcl-trainer export    --checkpoint runs/demo --output G.safetensors   (CUT's ResnetGenerator names, Python)
//   patchgcl-trainer synth     --output DIR      (the embedded dataset, written as PNG folders)
//   patchgcl-trainer explain   --checkpoint RUN --image FILE --out DIR [--layer L] [--k K]  (the patch graph, Fig. 9)
//   patchgcl-trainer launch    --nproc-per-node N [--nnodes M ...] -- train ...   (docs/distributed.md)
// Each subcommand is one file of commands/ (its options, their registration, what it runs); main()
// parses the command line and runs the chosen one. Exit status: 0 when the command did all it was
// asked, 1 with an "error: ..." line otherwise, 128 + signal (130, 143) for a training run stopped
// by SIGINT/SIGTERM after its checkpoint.
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION  // the binary's one definition of stb_image_resize
#include "trainer/commands/evaluate.hpp"
#include "trainer/commands/explain.hpp"
#include "trainer/commands/export.hpp"
#include "trainer/commands/launch.hpp"
#include "trainer/commands/synth.hpp"
#include "trainer/commands/train.hpp"
#include "trainer/commands/translate.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <memory>
#include <vector>

int main(int argc, char** argv) {
  using namespace trainer::commands;
  CLI::App app{
      "patchgcl-trainer: unpaired image-to-image translation with graph (PatchGCL) and patch (CUT, PUT) "
      "contrastive losses"};
  app.require_subcommand(1);
  GlobalOptions global;
  add_global_options(app, global);
  auto launch_options = std::make_shared<trainer::launch::LaunchOptions>();
  const std::vector<Command> commands = {add_train(app),
                                         add_translate(app),
                                         add_evaluate(app),
                                         add_synth(app),
                                         add_explain(app),
                                         add_export(app),
                                         add_launch(app, launch_options)};
  const int own_argc = split_rank_command(argc, argv, launch_options->args);
  CLI11_PARSE(app, own_argc, argv);
  if (own_argc != argc && !app.got_subcommand("launch")) {
    fmt::print(stderr, "error: `--` only separates launch's options from the ranks' command\n");
    return 1;
  }
  try {
    apply_global_options(global);
    for (const auto& command : commands)
      if (command.app->parsed()) return command.run(global);
  } catch (const c10::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}

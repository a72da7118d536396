// `patchgcl-trainer export`: a checkpoint's generator as generator.safetensors under the names of
// CUT's PyTorch ResnetGenerator (train/generator_export.hpp), the file `train` writes into the run
// folder with every checkpoint, for a kept checkpoint or a run of an earlier version.
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/train/checkpoint.hpp"
#include "trainer/train/generator_export.hpp"

#include <filesystem>
#include <memory>

namespace trainer {
namespace commands {

struct ExportOptions {
  std::string checkpoint, output;
};

inline Command add_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand("export",
                                 "write a checkpoint's generator as a safetensors file under the names of "
                                 "CUT's PyTorch ResnetGenerator (docs/trainer.md)");
  cmd->add_option("--checkpoint", o->checkpoint, "ckpt.safetensors of a run (or the run folder)")->required();
  cmd->add_option("--output", o->output, "the safetensors file to write (e.g. generator.safetensors)")->required();
  return {cmd, [o](const GlobalOptions&) {
            namespace fs = std::filesystem;
            const fs::path output(o->output);
            std::error_code ec;
            if (fs::is_directory(output, ec))
              bad_option("--output", "a file name (the safetensors file to write)",
                         fmt::format("'{}', a folder", o->output));
            const fs::path parent = output.has_parent_path() ? output.parent_path() : fs::path(".");
            if (!fs::is_directory(parent, ec))
              bad_option("--output", "a file in an existing folder",
                         fmt::format("'{}' (no folder '{}')", o->output, parent.string()));
            // The generator alone, on the CPU: the file is read the same wherever it was trained.
            const auto model = checkpoint::load_model(checkpoint::resolve(o->checkpoint), torch::kCPU);
            const size_t n = export_generator(*model, output, /*step: not read from the checkpoint*/ -1);
            const auto& c = model->config();
            fmt::print("wrote {} ({} tensors: ResnetGenerator input_nc {}, output_nc {}, ngf {}, n_blocks {})\n",
                       o->output, n, c.input_nc, c.output_nc, c.ngf, c.n_blocks);
            return 0;
          }};
}

}  // namespace commands
}  // namespace trainer

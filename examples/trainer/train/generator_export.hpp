// generator.safetensors: the trained generator alone, under the state_dict names of CUT's PyTorch
// ResnetGenerator (nets/cut_names.hpp), for use in Python:
//
//     from safetensors.torch import load_file
//     netG.load_state_dict(load_file("runs/demo/generator.safetensors"), strict=True)
//
// `train` writes it into the run folder with every checkpoint; `patchgcl-trainer export` writes it
// from any checkpoint. Its `__metadata__` holds the options that build the matching network
// (input_nc, output_nc, ngf, n_blocks, norm, no_antialias, ...) and the training step.
// The file is written atomically (a .tmp file, fsync, rename, fsync of the folder), as checkpoints are.
#pragma once

#include "trainer/nets/cut_names.hpp"
#include "trainer/train/atomic_file.hpp"
#include "trainer/train/trainer.hpp"

#include <patchgcl/io/safetensors.hpp>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>

namespace trainer {

/// The `__metadata__` of generator.safetensors: CUT's options for the network that loads it
/// (models/networks.py define_G with netG resnet_{n_blocks}blocks) and, when `step` >= 0, the
/// step it was trained to.
inline std::map<std::string, std::string> generator_metadata(const TrainConfig& c, int64_t step) {
  std::map<std::string, std::string> m = {{"format", "patchgcl-cut-generator"},
                                          {"architecture", "ResnetGenerator"},
                                          {"input_nc", std::to_string(c.input_nc)},
                                          {"output_nc", std::to_string(c.output_nc)},
                                          {"ngf", std::to_string(c.ngf)},
                                          {"n_blocks", std::to_string(c.n_blocks)},
                                          {"norm", "instance"},
                                          {"use_dropout", "false"},
                                          {"no_antialias", "false"},
                                          {"no_antialias_up", "false"},
                                          {"padding_type", "reflect"},
                                          {"input_range", "[-1, 1]"}};
  if (step >= 0) m["step"] = std::to_string(step);
  return m;
}

/// Writes `trainer`'s generator to `path` (generator.safetensors: CUT's names, metadata above with
/// `step`, left out when < 0), atomically. Returns the number of tensors written.
inline size_t export_generator(const Trainer& trainer, const std::filesystem::path& path, int64_t step) {
  const auto tensors = cut_names::to_cut_state_dict(*trainer.G);
  write_file_atomically(path, patchgcl::io::safetensors_bytes(tensors, generator_metadata(trainer.config(), step)));
  return tensors.size();
}

}  // namespace trainer

// `patchgcl-trainer synth`: the embedded dataset written as image folders.
#pragma once

#include "trainer/commands/common.hpp"
#include "trainer/data/dataset.hpp"
#include "trainer/data/synthetic.hpp"
#include "trainer/nets/discriminator.hpp"

#include <filesystem>
#include <memory>

namespace trainer {

/// `synth`: writes the embedded dataset to disk in the CycleGAN/CUT layout.
inline void write_synthetic(const std::filesystem::path& out, int count, int size, uint64_t seed) {
  namespace fs = std::filesystem;
  if (count < 1) bad_option("--count", "at least 1", std::to_string(count));
  const int64_t min_side = smallest_image_side();
  if (size < min_side || int64_t{size} * size > decode_limits().max_pixels)
    bad_option("--size",
               fmt::format("at least {} (the smallest image the trainer trains on) and at most {} pixels in "
                           "all (--max-image-pixels)",
                           min_side, decode_limits().max_pixels),
               std::to_string(size));
  for (const char* sub : {"trainA", "trainB", "testA", "testB"}) fs::create_directories(out / sub);
  for (int i = 0; i < count; ++i) {
    const std::string name = fmt::format("{:05}.png", i);
    write_png(out / "trainA" / name, synthetic::sample(synthetic::Split::kTrain, Domain::kA, i, size, seed));
    write_png(out / "trainB" / name, synthetic::sample(synthetic::Split::kTrain, Domain::kB, i, size, seed));
    write_png(out / "testA" / name, synthetic::sample(synthetic::Split::kTest, Domain::kA, i, size, seed));
    write_png(out / "testB" / name, synthetic::sample(synthetic::Split::kTest, Domain::kB, i, size, seed));
  }
}

namespace commands {

struct SynthOptions {
  std::string output;
  int count = 100, size = 64;
  uint64_t seed = 0;
};

inline Command add_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  auto* cmd = app.add_subcommand("synth", "write the embedded dataset as trainA/ trainB/ testA/ testB/ PNGs");
  cmd->add_option("--output", o->output, "output folder")->required();
  cmd->add_option("--count", o->count, "images per folder")->capture_default_str();
  cmd->add_option("--size", o->size, "image side")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed")->capture_default_str();
  return {cmd, [o](const GlobalOptions&) {
            write_synthetic(o->output, o->count, o->size, o->seed);
            fmt::print("wrote {} images to {}\n", 4 * o->count, o->output);
            return 0;
          }};
}

}  // namespace commands
}  // namespace trainer

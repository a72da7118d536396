// Bounded resources: the memory a run needs is estimated before anything is
// allocated, and a run that does not fit is refused naming the option, the estimate and the memory
// available; threads are capped at the CPUs available.
#include "trainer/tests/fault_helpers.hpp"

using namespace trainer_tests;

TEST_CASE("Oversized runs are refused with the option, the estimate and the memory available", "[memory][faults]") {
  TrainConfig c;  // CUT defaults: 256 px crops, ngf 64, 9 blocks
  c.data.root = "folder";
  CHECK_NOTHROW(check_training_memory(c, 1000, 16e9));
  c.data.crop_size = 8000;
  c.data.load_size = 8000;
  CHECK_THROWS_WITH(check_training_memory(c, 2, 16e9),
                    Catch::StartsWith("--crop-size must be small enough for the memory available: with --crop-size "
                                      "8000, --batch-size 1, --ngf 64, --n-blocks 9, --ndf 64 a run needs about ") &&
                        Catch::Contains("and 16 GB are available (got 8000)"));
  c.data.crop_size = c.data.load_size = 256;
  c.batch_size = 100000;
  CHECK_THROWS_WITH(check_training_memory(c, 2, 16e9), Catch::StartsWith("--batch-size must be small enough"));
  c.batch_size = 1;
  c.data.load_size = 60000;  // the images themselves: 10 GB each
  CHECK_THROWS_WITH(check_training_memory(c, 2, 16e9), Catch::StartsWith("--load-size must be small enough"));
  TrainConfig s;
  s.data.synthetic_count = 100000000;
  CHECK_THROWS_WITH(check_training_memory(s, 0, 16e9), Catch::StartsWith("--synthetic-count must be small enough"));
  CHECK_NOTHROW(check_training_memory(s, 0, -1));  // unknown memory: no check
  // The parameter count follows the networks' layers exactly.
  TrainConfig t;
  t.ngf = 8, t.n_blocks = 2, t.ndf = 8;
  ResnetGenerator G(GeneratorOptions().ngf(8).n_blocks(2));
  PatchDiscriminator D(DiscriminatorOptions().ndf(8));
  double n = 0;
  for (auto& p : G->parameters()) n += static_cast<double>(p.numel());
  for (auto& p : D->parameters()) n += static_cast<double>(p.numel());
  CHECK(parameter_count(t) - 5 * (4 * 8 * 256 + 256 + 256 * 256 + 256) == Approx(n).epsilon(0));
  CHECK(available_memory() > 0);
  CHECK(available_cpus() >= 1);
}

#if defined(__SANITIZE_ADDRESS__)  // GCC
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

TEST_CASE("The memory estimate is above a measured training step and within twice of it", "[memory][faults]") {
  if (kAddressSanitizer) {  // scripts/sanitize.sh instruments the trainer too: shadow memory and quarantine
    WARN("built with AddressSanitizer: the trainer's peak memory is not a release build's; not measured");
    return;
  }
  TempDir dir("memory");
  const std::vector<std::string> common = {"train", "--synthetic-count", "4", "--ngf", "16", "--n-blocks", "3", "--ndf",
                                           "16",    "--log-every",       "1"};
  auto args = [&](const std::string& run, const std::string& steps, const std::string& size) {
    return common +
           std::vector<std::string>{"--run", (dir.path / run).string(), "--steps", steps, "--synthetic-size", size};
  };
  // The baseline: the process with the same networks, no step, the smallest images.
  const auto idle = run_measured(args("idle", "0", "24"), dir.path / "idle.log");
  const auto step = run_measured(args("step", "2", "128"), dir.path / "step.log");
  REQUIRE((WIFEXITED(idle.first) && WEXITSTATUS(idle.first) == 0));
  REQUIRE((WIFEXITED(step.first) && WEXITSTATUS(step.first) == 0));
  TrainConfig c;
  c.data.synthetic_size = c.data.load_size = c.data.crop_size = 128;
  c.data.synthetic_count = 4;
  c.ngf = 16, c.n_blocks = 3, c.ndf = 16;
  const auto estimate = estimate_training_memory(c);
  const double measured = step.second - idle.second;
  INFO("measured " << format_bytes(measured) << ", estimated "
                   << format_bytes(estimate.activations + estimate.networks));
  CHECK(estimate.activations + estimate.networks >= measured);
  CHECK(estimate.activations + estimate.networks <= 2 * measured);
}

TEST_CASE("Oversized requests are refused before anything is created, naming the option", "[memory][cli][faults]") {
  TempDir dir("oversized");
  REQUIRE(run_trainer({"synth", "--output", (dir.path / "data").string(), "--count", "1", "--size", "32"},
                      dir.path / "synth.log")
              .status == 0);
  int index = 0;
  auto refused = [&](const std::vector<std::string>& extra, const std::string& phrase, const fs::path& data = {}) {
    const fs::path run = dir.path / ("run" + std::to_string(index));
    const auto result = run_trainer(tiny_train(run, "2", data) + extra, dir.path / ("out" + std::to_string(index++)));
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains(phrase) && Catch::Contains(" are available (got "));
    CHECK_FALSE(fs::exists(run));  // before: std::bad_alloc after creating the run folder
  };
  const fs::path data = dir.path / "data";
  // Sizes beyond any machine's memory even with this tiny network (--crop-size 8000 with
  // CUT's default widths is refused too: the test above).
  refused({"--crop-size", "30000", "--load-size", "30000"}, "--crop-size must be small enough for the memory available",
          data);
  refused({"--crop-size", "100000", "--load-size", "100000"}, "--crop-size must be small enough", data);
  refused({"--batch-size", "10000000"}, "--batch-size must be small enough");
  // --threads far above the CPUs: capped with a warning (it started 694 threads and hung).
  const auto result =
      run_trainer(std::vector<std::string>{"--threads", "100000"} + tiny_train(dir.path / "threads", "1"),
                  dir.path / "threads.log");
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK_THAT(result.output,
             Catch::Contains("warning: --threads 100000 is more than the ") && Catch::Contains(" CPU(s) available"));
}

TEST_CASE("translate --tile: a 4000 x 3000 image in bounded memory, at its own size", "[memory][faults][tile]") {
  if (kAddressSanitizer) {
    WARN("built with AddressSanitizer: the trainer's peak memory is not a release build's; not measured");
    return;
  }
  TempDir dir("tiled_memory");
  REQUIRE(run_trainer(tiny_train(dir.path / "run", "0"), dir.path / "train.log").status == 0);
  auto write_image = [&](const fs::path& path, int width, int height) {
    Image img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c)
          img.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] =
              static_cast<uint8_t>((x / 7 + y / 5 + 40 * c) & 255);
    write_png(path, img);
  };
  fs::create_directories(dir.path / "big");
  fs::create_directories(dir.path / "small");
  write_image(dir.path / "big" / "big.png", 4000, 3000);
  write_image(dir.path / "small" / "small.png", 256, 192);
  auto translate = [&](const std::string& name) {
    return run_measured(
        {"--threads", "1", "translate", "--checkpoint", (dir.path / "run").string(), "--input",
         (dir.path / name).string(), "--output", (dir.path / (name + "_out")).string(), "--tile", "256"},
        dir.path / (name + ".log"));
  };
  const auto small = translate("small");
  const auto big = translate("big");
  INFO(read_text(dir.path / "big.log"));
  REQUIRE((WIFEXITED(big.first) && WEXITSTATUS(big.first) == 0));
  REQUIRE((WIFEXITED(small.first) && WEXITSTATUS(small.first) == 0));
  const Image out = read_image(dir.path / "big_out" / "big.png");
  CHECK((out.width == 4000 && out.height == 3000));
  // What grows with the image: its pixels in and out (3 + 3 bytes), the blended sum (12 bytes), the
  // PNG decoder's and encoder's buffers (a few bytes each; 25.7 bytes a pixel in all were measured):
  // at most 32 bytes a pixel. The network's activations are a 256 x 256 tile's in both runs.
  const double pixels = 4000.0 * 3000.0, growth = big.second - small.second;
  const double whole =
      estimate_translation_memory(checkpoint::read_config(dir.path / "run" / "ckpt.safetensors"), 4000, 3000);
  INFO("peak RSS " << format_bytes(small.second) << " (256 x 192), " << format_bytes(big.second) << " (4000 x 3000): "
                   << growth / pixels << " bytes a pixel; the whole image at once: about " << format_bytes(whole));
  CHECK(growth < 32 * pixels);
  CHECK(big.second < whole);
}

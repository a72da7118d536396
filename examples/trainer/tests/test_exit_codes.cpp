// The commands as a user runs them: every command exits non-zero with a
// message when it did not do what was asked, images above the pixel limit are skipped and named,
// and config.txt, log.jsonl and the progress line show only what applies to the run.
#include "trainer/tests/fault_helpers.hpp"

using namespace trainer_tests;

TEST_CASE("Every command exits non-zero with a message when it did not do what was asked", "[cli][faults]") {
  TempDir dir("exit_codes");
  const fs::path run = dir.path / "run";
  REQUIRE(run_trainer(tiny_train(run, "0"), dir.path / "train.log").status == 0);
  REQUIRE(run_trainer({"synth", "--output", (dir.path / "data").string(), "--count", "1", "--size", "24"},
                      dir.path / "synth.log")
              .status == 0);
  const std::string ckpt = (run / "ckpt.safetensors").string(),
                    image = (dir.path / "data" / "testA" / "00000.png").string();
  int index = 0;
  auto expect = [&](const std::vector<std::string>& args, int status, const std::vector<std::string>& phrases) {
    const auto result = run_trainer(args, dir.path / ("out" + std::to_string(index++)));
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    INFO("patchgcl-trainer" << cmd << "\n" << result.output);
    CHECK(result.status == status);
    for (const auto& phrase : phrases) CHECK_THAT(result.output, Catch::Contains(phrase));
  };
  // evaluate --json into an unwritable path: wrote nothing and exited 0.
  expect({"evaluate", "--checkpoint", ckpt, "--count", "2", "--json", (dir.path / "no" / "such" / "s.json").string()},
         1, {"--json must be a file this process can write (got '", "No such file or directory"});
  // evaluate --count 0 printed {"structure_iou":-nan,...}; --count -1 printed count -1.
  expect({"evaluate", "--checkpoint", ckpt, "--count", "0"}, 1, {"--count must be at least 1 (got 0)"});
  expect({"evaluate", "--checkpoint", ckpt, "--count", "-1"}, 1, {"--count must be at least 1 (got -1)"});
  // synth --size 0 wrote 0x0 PNGs; --count -1 printed "wrote -4 images".
  expect({"synth", "--output", (dir.path / "s0").string(), "--size", "0"}, 1,
         {"--size must be at least 24", "(got 0)"});
  expect({"synth", "--output", (dir.path / "s1").string(), "--count", "-1"}, 1,
         {"--count must be at least 1 (got -1)"});
  CHECK_FALSE(fs::exists(dir.path / "s0" / "trainA" / "00000.png"));
  // translate --size -5 was accepted; --size 3 failed with LibTorch's padding message.
  for (const char* size : {"-5", "3"})
    expect({"translate", "--checkpoint", ckpt, "--input", image, "--output", (dir.path / "t").string(), "--size", size},
           1, {"--size must be 0 (keep the size) or at least 8", std::string("(got ") + size + ")"});
  // translate of non-images printed "translated 0 image(s)" and exited 0.
  fs::create_directories(dir.path / "bad");
  write_garbage(dir.path / "bad" / "x.png");
  fs::copy_file(image, dir.path / "bad" / "good.png");
  expect({"translate", "--checkpoint", ckpt, "--input", (dir.path / "bad").string(), "--output",
          (dir.path / "t").string()},
         1, {"translated 1 image(s)", "error: 1 of 2 image(s) could not be translated"});
  // translate --checkpoint RUN_FOLDER said the folder does not exist.
  expect({"translate", "--checkpoint", run.string(), "--input", image, "--output", (dir.path / "t2").string()}, 0,
         {"translated 1 image(s)"});
  expect({"evaluate", "--checkpoint", dir.path.string(), "--count", "1"}, 1,
         {"--checkpoint must be a ckpt.safetensors file or a run folder that holds one (got '"});
  // --lr 1e9 ended with the library's NaN error.
  expect(tiny_train(dir.path / "diverged", "20") + std::vector<std::string>{"--lr", "1e9"}, 1,
         {"training diverged at step ", "Try a lower --lr (this run: 1000000000)"});
}

TEST_CASE("Images above the pixel limit are skipped with a warning; --max-image-pixels raises the limit",
          "[cli][image][faults]") {
  TempDir dir("pixels");
  REQUIRE(run_trainer(tiny_train(dir.path / "run", "0"), dir.path / "train.log").status == 0);
  REQUIRE(run_trainer({"synth", "--output", (dir.path / "data").string(), "--count", "1", "--size", "32"},
                      dir.path / "synth.log")
              .status == 0);
  const std::vector<std::string> args = {"translate",
                                         "--checkpoint",
                                         (dir.path / "run").string(),
                                         "--input",
                                         (dir.path / "data" / "testA").string(),
                                         "--output",
                                         (dir.path / "out").string()};
  const auto small = run_trainer(std::vector<std::string>{"--max-image-pixels", "1000"} + args, dir.path / "small.log");
  INFO(small.output);
  CHECK(small.status == 1);
  CHECK_THAT(small.output, Catch::Contains("image header declares 32 x 32 = 1024 pixels, more than the limit of 1000 "
                                           "(--max-image-pixels raises it)"));
  CHECK(run_trainer(std::vector<std::string>{"--max-image-pixels", "1024"} + args, dir.path / "ok.log").status == 0);
  // A 33-byte PNG header announcing 3072 x 65535 in a training folder: skipped, counted, named.
  std::ofstream(dir.path / "data" / "trainA" / "bomb.png", std::ios::binary)
      .write("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x0c\0\0\0\xff\xff\x08\x02\0\0\0\xc8\x01\x98\x7e", 33);
  // A BMP: refused as a format the trainer does not read, named in the warning.
  std::ofstream(dir.path / "data" / "trainA" / "old.bmp", std::ios::binary).write("BM\x3a\0\0\0\0\0\0\0\x36\0\0\0", 14);
  const auto train = run_trainer(tiny_train(dir.path / "run2", "1", dir.path / "data") +
                                     std::vector<std::string>{"--crop-size", "24", "--load-size", "28"},
                                 dir.path / "train2.log");
  INFO(train.output);
  CHECK(train.status == 0);
  CHECK_THAT(train.output, Catch::Contains("bomb.png (image header declares 3072 x 65535 = 201323520 pixels, more than "
                                           "the limit of 67108864"));
  CHECK_THAT(train.output,
             Catch::Contains("old.bmp (unsupported image format BMP: the trainer reads JPEG and PNG only)"));
}

TEST_CASE("config.txt and the progress line show only what applies to the run", "[cli][train][faults]") {
  TempDir dir("applies");
  REQUIRE(run_trainer({"synth", "--output", (dir.path / "data").string(), "--count", "1", "--size", "32"},
                      dir.path / "synth.log")
              .status == 0);
  const auto single = run_trainer(tiny_train(dir.path / "single", "2", dir.path / "data") +
                                      std::vector<std::string>{"--single-image", "--crop-size", "24", "--lr", "0.0002"},
                                  dir.path / "single.log");
  INFO(single.output);
  REQUIRE(single.status == 0);
  const std::string config = read_text(dir.path / "single" / "config.txt");
  CHECK_THAT(config,
             Catch::Contains("single_image=1") && Catch::Contains("min_zoom=0.25") && Catch::Contains("lr=0.0002\n"));
  for (const char* irrelevant : {"load_size=", "synthetic_size=", "synthetic_count="})
    CHECK_THAT(config, !Catch::Contains(irrelevant));
  CHECK_THAT(single.output, Catch::Contains("step 2/2  ") && !Catch::Contains("epoch"));  // it said "epoch 2.00"
  CHECK_THAT(read_text(dir.path / "single" / "log.jsonl"), !Catch::Contains("epoch"));
  CHECK_THAT(read_text(dir.path / "single" / "index.html"), !Catch::Contains("epoch"));
  const auto synthetic = run_trainer(tiny_train(dir.path / "synthetic", "1"), dir.path / "synthetic.log");
  REQUIRE(synthetic.status == 0);
  const std::string config2 = read_text(dir.path / "synthetic" / "config.txt");
  CHECK_THAT(config2, Catch::Contains("synthetic_size=24"));
  for (const char* irrelevant : {"load_size=", "crop_size=", "min_zoom=", "single_image="})
    CHECK_THAT(config2, !Catch::Contains(irrelevant));
  CHECK_THAT(synthetic.output, Catch::Contains("epoch 0.25"));
}

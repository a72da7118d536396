// evaluate --run (every kept checkpoint scored, the table and the best) and the evaluate command
// line, with the feature network of evaluation_helpers.hpp.
#include "trainer/tests/evaluation_helpers.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

using namespace trainer;
using namespace trainer_tests::eval_fixtures;
namespace fs = std::filesystem;

TEST_CASE("evaluate --run scores every kept checkpoint, writes the table and names the best", "[evaluate_real]") {
  torch::set_num_threads(1);
  trainer_tests::TempDir dir("real_eval_run");
  const auto data = dir.path / "data";
  write_folder(data / "trainA", 6, 32, 32, 900);
  write_folder(data / "trainB", 6, 32, 32, 910);
  write_folder(data / "testA", 6, 32, 32, 920);
  write_folder(data / "testB", 7, 32, 32, 930);
  auto config = trainer_tests::tiny_config();
  config.data.root = data.string();
  config.data.load_size = config.data.crop_size = 32;
  config.steps = 4;
  RunOptions run;
  run.quiet = true;
  run.log_every = run.sample_every = 4;
  run.checkpoint_every = 1;
  run.keep_checkpoints = 10;
  run.run_dir = dir.path / "run";
  train(config, run, torch::kCPU);
  const auto net_file = write_network(dir.path, 5);
  evaluation::RealDataOptions options;
  options.kid.subsets = 5;
  const std::string json = evaluate_run(run.run_dir, "", net_file, options, false, torch::kCPU, true);
  INFO(json);

  // One row per kept checkpoint (steps 1-4; ckpt.safetensors is step 4's), each the FID that evaluate
  // --checkpoint gives that file, and the best is the lowest of them.
  metrics::FeatureNetwork net(net_file, torch::kCPU);
  std::map<int64_t, double> fids;
  for (const auto& [step, file] : checkpoint::list_kept(run.run_dir)) {
    auto model = checkpoint::load_model(file, torch::kCPU);
    fids[step] = evaluate_real(*model, data, net_file, options, false).fid;
  }
  REQUIRE(fids.size() == 4);
  int64_t best = fids.begin()->first;
  for (const auto& [step, fid] : fids)
    if (fid < fids[best]) best = step;
  const auto csv = trainer_tests::read_text(run.run_dir / "checkpoint_scores.csv");
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  CHECK(line == "step,fid,kid,kid_std,checkpoint");
  int rows = 0;
  for (; std::getline(lines, line); ++rows) {
    const int64_t step = std::stoll(line);
    REQUIRE(fids.count(step) == 1);
    CHECK(std::stod(line.substr(line.find(',') + 1)) == Approx(fids[step]).epsilon(1e-5).margin(1e-6));
    CHECK_THAT(line, Catch::EndsWith(fmt::format(",checkpoints/step_{:08}.safetensors", step)));
  }
  CHECK(rows == 4);
  CHECK(json_number(json.substr(json.find("\"best\":")), "step") == best);
  CHECK(fs::equivalent(run.run_dir / "best.safetensors", checkpoint::kept_path(run.run_dir, best)));
  CHECK(trainer_tests::read_text(run.run_dir / "checkpoint_scores.json") == json + "\n");

  // index.html: the losses' charts and the FID and KID charts, well-formed, the best named.
  const auto html = trainer_tests::read_text(run.run_dir / "index.html");
  std::map<std::string, int> elements;
  CHECK(trainer_tests::markup_problems(html, &elements) == "");
  CHECK(elements["svg"] == 8);
  CHECK(elements["tr"] == 5);
  CHECK_THAT(html, Catch::Contains(">FID</text>") && Catch::Contains(fmt::format("best: step {} (FID", best)));

  SECTION("refused: a folder without checkpoints, a run on the embedded dataset without --data") {
    CHECK_THROWS_WITH(evaluate_run(dir.path / "data", "", net_file, options, false, torch::kCPU, true),
                      Catch::Contains("holds no checkpoint") && Catch::Contains("--keep-checkpoints"));
    auto synthetic = trainer_tests::tiny_config();
    synthetic.steps = 0;
    run.run_dir = dir.path / "synthetic";
    run.keep_checkpoints = 0;
    train(synthetic, run, torch::kCPU);
    CHECK_THROWS_WITH(evaluate_run(run.run_dir, "", net_file, options, false, torch::kCPU, true),
                      Catch::Contains("--data must be a folder") && Catch::Contains("synth --output"));
    // With --data, the single checkpoint (step 0) is the table and the best.
    const auto one = evaluate_run(run.run_dir, data, net_file, options, false, torch::kCPU, true);
    CHECK(json_number(one.substr(one.find("\"best\":")), "step") == 0);
  }
}

#ifdef PATCHGCL_TRAINER_BINARY
TEST_CASE("patchgcl-trainer evaluate --data --features-torchscript prints JSON with finite fid and kid",
          "[evaluate_real]") {
  trainer_tests::TempDir dir("real_eval_cli");
  write_folder(dir.path / "data" / "testA", 5, 32, 32, 500);
  write_folder(dir.path / "data" / "testB", 6, 32, 32, 600);
  const auto net = write_network(dir.path, 4);
  const std::string bin = PATCHGCL_TRAINER_BINARY;
  const auto run = dir.path / "run";
  REQUIRE(std::system(fmt::format("'{}' train --run '{}' --synthetic-size 32 --ngf 8 --n-blocks 1 --ndf 8 --steps 0 "
                                  "> /dev/null 2>&1",
                                  bin, run.string())
                          .c_str()) == 0);
  const auto json_file = dir.path / "scores.json";
  const auto stderr_file = dir.path / "stderr.txt";
  auto evaluate = [&](const std::string& extra) {
    return std::system(fmt::format("'{}' evaluate --checkpoint '{}' --data '{}' {} --json '{}' > /dev/null 2> '{}'",
                                   bin, (run / "ckpt.safetensors").string(), (dir.path / "data").string(), extra,
                                   json_file.string(), stderr_file.string())
                           .c_str());
  };
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string features = "--features-torchscript '" + net.path.string() + "'";
  REQUIRE(evaluate(features + " --kid-subsets 10") == 0);
  const auto json = read(json_file);
  INFO(json);
  CHECK(json.find("\"mode\":\"folders\"") != std::string::npos);
  CHECK(std::isfinite(json_number(json, "fid")));
  CHECK(std::isfinite(json_number(json, "kid")));
  CHECK(json_number(json, "translated") == 5);
  CHECK(json_number(json, "real") == 6);
  // Single-image mode on the same folders: the first image of each, 8 crops of 16 px.
  REQUIRE(evaluate(features + " --single-image --crops 8 --crop-size 16 --view-size 32") == 0);
  CHECK(read(json_file).find("\"mode\":\"single-image\"") != std::string::npos);
  CHECK(std::isfinite(json_number(read(json_file), "fid")));
  // --data without --features, and a --features-torchscript file that is not TorchScript: exit 1 with the reason.
  CHECK(evaluate("") != 0);
  CHECK(read(stderr_file).find("--features") != std::string::npos);
  CHECK(evaluate(fmt::format("--features-torchscript '{}'", (dir.path / "data" / "testA" / "000.png").string())) != 0);
  CHECK(read(stderr_file).find("TorchScript") != std::string::npos);
  // Two folders, no checkpoint; a run's checkpoints (--run); nothing to evaluate.
  auto command = [&](const std::string& args) {
    return std::system(fmt::format("'{}' evaluate {} --json '{}' > /dev/null 2> '{}'", bin, args, json_file.string(),
                                   stderr_file.string())
                           .c_str());
  };
  const auto folder = [&](const char* name) { return "'" + (dir.path / "data" / name).string() + "'"; };
  REQUIRE(command(fmt::format("--folders {} {} {}", folder("testA"), folder("testB"), features)) == 0);
  CHECK(read(json_file).find("\"mode\":\"two-folders\"") != std::string::npos);
  CHECK(json_number(read(json_file), "real") == 6);
  REQUIRE(command(fmt::format("--run '{}' --data '{}' {}", run.string(), (dir.path / "data").string(), features)) == 0);
  CHECK(read(json_file).find("\"checkpoints\":[{\"step\":0,") != std::string::npos);
  CHECK(fs::exists(run / "best.safetensors"));
  CHECK(command("") != 0);
  CHECK(read(stderr_file).find("--run RUN or --folders X Y") != std::string::npos);
  CHECK(command(fmt::format("--run '{}' --checkpoint '{}'", run.string(), run.string())) != 0);
  CHECK(read(stderr_file).find("excludes") != std::string::npos);
}
#endif

// explain: the patch graph of a trained checkpoint drawn over an image (Fig. 9), and the graph
// panel a --loss graph run adds to its samples.
#include "trainer/tests/helpers.hpp"

using namespace trainer_tests;

namespace {

/// A checkpoint of a 2-step run on the embedded dataset (32 x 32 images).
fs::path tiny_checkpoint(const fs::path& dir, LossKind loss) {
  TrainConfig c = tiny_config(loss);
  c.data.synthetic_count = 8;
  c.n_blocks = 1;
  c.num_patches = 32;
  c.steps = 2;
  Trainer t(c, torch::kCPU);
  UnpairedDataset data(c.data);
  for (int64_t s = 0; s < c.steps; ++s) t.train_step(data.batch(s, c.batch_size));
  fs::create_directories(dir);
  checkpoint::save(t, dir / "ckpt.safetensors");
  return dir / "ckpt.safetensors";
}

Image sample_image(int width, int height) {
  return synthetic::sample(synthetic::Split::kTest, synthetic::Domain::kA, 0, std::max(width, height), 1);
}

Image read_png(const fs::path& path) {
  std::string error;
  Image image = read_image(path, &error);
  INFO(path.string() << ": " << error);
  REQUIRE(!image.empty());
  return image;
}

}  // namespace

TEST_CASE("explain writes neighbourhood, pooling and eigenvector pictures and an index.html", "[explain]") {
  torch::set_num_threads(1);
  TempDir dir("explain_pictures");
  const auto ckpt = tiny_checkpoint(dir.path / "run", LossKind::kGraph);
  write_png(dir.path / "input.png", sample_image(40, 40));
  explain::ExplainOptions options;
  options.k = 3;
  const auto summary =
      explain::explain(dir.path / "run", dir.path / "input.png", dir.path / "out", options, torch::kCPU);
  INFO(summary);
  // The image is fitted to the checkpoint's 32 x 32; the last encoder layer is 8 x 8 = 64 nodes.
  CHECK(summary.find("64 nodes on a 8x8 map") != std::string::npos);
  CHECK(summary.find("level 1: 16 nodes") != std::string::npos);
  const auto input = read_png(dir.path / "out" / "input.png");
  CHECK(input.width == 32);
  CHECK(read_png(dir.path / "out" / "pooling.png").width == 32);
  CHECK(read_png(dir.path / "out" / "neighbourhoods.png").width == 2 * 32 + 3 * 2);  // 2 x 2 panels, 2 px gutters
  CHECK(read_png(dir.path / "out" / "eigenvectors.png").width == 3 * 32 + 4 * 2);    // k = 3 panels
  std::ifstream html(dir.path / "out" / "index.html");
  const std::string text((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  for (const char* name :
       {"input.png", "neighbourhoods.png", "pooling.png", "eigenvectors.png", "&lambda;<sub>2</sub>"})
    CHECK(text.find(name) != std::string::npos);

  SECTION("an explicit layer, size and grid") {
    options.layer = 1;
    options.size = 48;
    options.grid = 6;
    const auto s = explain::explain(ckpt, dir.path / "input.png", dir.path / "out2", options, torch::kCPU);
    CHECK(s.find("layer 1: 36 nodes on a 48x48 map") != std::string::npos);
    CHECK(read_png(dir.path / "out2" / "pooling.png").width == 48);
  }
}

TEST_CASE("The pooling heatmap frames exactly the kept nodes and the eigenvectors are those of Abar", "[explain]") {
  // A hand-made record: 2 x 2 map, all 4 nodes, node 3 and 1 kept.
  patchgcl::GraphLayerInspection layer;
  layer.patch_ids = torch::arange(4, torch::kLong);
  layer.rows = torch::tensor({0L, 0L, 1L, 1L});
  layer.cols = torch::tensor({0L, 1L, 0L, 1L});
  layer.height = layer.width = 2;
  patchgcl::GraphLevelInspection level0, level1;
  level0.adjacency = torch::tensor({1., 1., 0., 0., 1., 1., 0., 0., 0., 0., 1., 1., 0., 0., 1., 1.}).view({1, 4, 4});
  level0.abar = patchgcl::functional::normalize_adjacency(level0.adjacency);
  level0.info_nce = torch::tensor(1.0);
  level1.adjacency = torch::eye(2).unsqueeze(0);
  level1.scores = torch::tensor({0.1, 0.7, 0.2, 0.9}).view({1, 4});
  level1.kept = torch::tensor({3L, 1L}).view({1, 2});
  level1.info_nce = torch::tensor(0.5);
  layer.levels = {level0, level1};
  Image grey{8, 8, std::vector<uint8_t>(8 * 8 * 3, 128)};
  auto p = explain::draw(grey, layer, 2);
  // Two components: eigenvalues 0, 0 (up to float32 rounding of Abar).
  REQUIRE(p.eigenvalues.size() == 2);
  CHECK(std::abs(p.eigenvalues[0]) < 1e-6);
  CHECK(std::abs(p.eigenvalues[1]) < 1e-6);
  CHECK(p.summary.find("4 nodes on a 2x2 map, 2 edges") != std::string::npos);
  // Node cells are 4 x 4 px; kept cells (right column) have a white frame, the others none.
  auto px = [&](int x, int y) { return &p.pooling.pixels[(static_cast<size_t>(y) * 8 + x) * 3]; };
  CHECK((px(4, 0)[0] == 255 && px(4, 0)[1] == 255 && px(4, 0)[2] == 255));
  CHECK((px(7, 7)[0] == 255 && px(7, 7)[1] == 255));
  CHECK_FALSE((px(0, 0)[0] == 255 && px(0, 0)[1] == 255 && px(0, 0)[2] == 255));
  // The highest score (node 3, bottom right) is the brightest cell interior, the lowest (node 0) the darkest.
  auto lum = [&](int x, int y) { return px(x, y)[0] + px(x, y)[1] + px(x, y)[2]; };
  CHECK(lum(1, 1) < lum(1, 5));  // node 0 (0.1) < node 2 (0.2)
  CHECK(lum(1, 5) < lum(5, 6));  // node 2 < node 3 (0.9)
}

TEST_CASE("explain refuses checkpoints without a graph, bad images and bad options, naming them", "[explain]") {
  torch::set_num_threads(1);
  TempDir dir("explain_errors");
  write_png(dir.path / "input.png", sample_image(32, 32));
  explain::ExplainOptions options;
  const auto patchnce = tiny_checkpoint(dir.path / "patchnce", LossKind::kPatchNCE);
  CHECK_THROWS_WITH(explain::explain(patchnce, dir.path / "input.png", dir.path / "out", options, torch::kCPU),
                    Catch::Contains("--loss graph") && Catch::Contains("--loss patchnce"));
  const auto graph = tiny_checkpoint(dir.path / "graph", LossKind::kGraph);
  std::ofstream(dir.path / "broken.png") << "not an image";
  CHECK_THROWS_WITH(explain::explain(graph, dir.path / "broken.png", dir.path / "out", options, torch::kCPU),
                    Catch::Contains("--image") && Catch::Contains("broken.png"));
  options.layer = 9;
  CHECK_THROWS_WITH(explain::explain(graph, dir.path / "input.png", dir.path / "out", options, torch::kCPU),
                    Catch::Contains("--layer") && Catch::Contains("got 9"));
  options.layer = -1;
  options.k = 0;
  CHECK_THROWS_WITH(explain::explain(graph, dir.path / "input.png", dir.path / "out", options, torch::kCPU),
                    Catch::Contains("--k") && Catch::Contains("got 0"));
  options.k = 65;  // the deepest layer's graph has 8 x 8 = 64 nodes
  CHECK_THROWS_WITH(explain::explain(graph, dir.path / "input.png", dir.path / "out", options, torch::kCPU),
                    Catch::Contains("--k: expected 1 to N = 64") && Catch::Contains("got 65"));
  options.k = 4;
  CHECK_THROWS_WITH(
      explain::explain(dir.path / "nothing", dir.path / "input.png", dir.path / "out", options, torch::kCPU),
      Catch::Contains("does not exist"));
}

TEST_CASE(
    "A --loss graph run's report shows the graph pictures of every sample step, and explain runs on its checkpoint",
    "[explain]") {
  TempDir dir("explain_report");
  const auto run = dir.path / "run";
  auto trained =
      run_trainer({"train", "--run", run.string(), "--synthetic-size", "32", "--synthetic-count", "4", "--ngf", "4",
                   "--ndf", "4", "--n-blocks", "1", "--num-patches", "16", "--steps", "2", "--sample-every", "1"},
                  dir.path / "train.out");
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const std::string html = read_text(run / "index.html");
  CHECK(markup_problems(html).empty());
  for (int step : {0, 1, 2})
    for (const char* name : {"neighbourhoods", "pooling", "eigenvectors"}) {
      const auto file = fmt::format("graph/step_{:06}/{}.png", step, name);
      INFO(file);
      CHECK_THAT(html, Catch::Contains("src='" + file + "'"));
      CHECK(read_png(run / file).height >= 32);
    }
  CHECK_THAT(html, Catch::Contains("Patch graph"));
  CHECK_THAT(html, Catch::Contains("64 nodes on a 8x8 map"));

  // Drawing draws no random numbers: the same run drawing (and sampling) only at its end trains identically.
  const auto quiet_run = dir.path / "run_b";
  auto trained_b = run_trainer(
      {"train", "--run", quiet_run.string(), "--synthetic-size", "32", "--synthetic-count", "4", "--ngf", "4", "--ndf",
       "4", "--n-blocks", "1", "--num-patches", "16", "--steps", "2", "--sample-every", "100"},
      dir.path / "train_b.out");
  REQUIRE(trained_b.status == 0);
  CHECK_FALSE(fs::exists(quiet_run / "graph" / "step_000001"));
  Trainer a(checkpoint::read_config(run / "ckpt.safetensors"), torch::kCPU),
      b(checkpoint::read_config(quiet_run / "ckpt.safetensors"), torch::kCPU);
  checkpoint::restore(a, run / "ckpt.safetensors");
  checkpoint::restore(b, quiet_run / "ckpt.safetensors");
  CHECK(same_state(*a.G, *b.G));
  CHECK(same_state(*a.F.module, *b.F.module));

  // explain on the run folder, as a user runs it.
  write_png(dir.path / "input.png", sample_image(40, 40));
  auto explained = run_trainer({"explain", "--checkpoint", run.string(), "--image", (dir.path / "input.png").string(),
                                "--out", (dir.path / "graph").string(), "--k", "3"},
                               dir.path / "explain.out");
  INFO(explained.output);
  CHECK(explained.status == 0);
  CHECK_THAT(explained.output, Catch::Contains("layer 3: 64 nodes on a 8x8 map"));
  CHECK(read_png(dir.path / "graph" / "eigenvectors.png").width == 3 * 32 + 4 * 2);
  CHECK(read_png(dir.path / "graph" / "pooling.png").width == 32);
  CHECK(read_png(dir.path / "graph" / "neighbourhoods.png").width == 2 * 32 + 3 * 2);

  // Bad input: a clear message and a non-zero exit, nothing written.
  auto bad_image = run_trainer({"explain", "--checkpoint", run.string(), "--image", (dir.path / "none.png").string(),
                                "--out", (dir.path / "bad").string()},
                               dir.path / "bad.out");
  CHECK(bad_image.status != 0);
  CHECK_THAT(bad_image.output, Catch::Contains("--image") && Catch::Contains("none.png"));
  auto bad_layer = run_trainer({"explain", "--checkpoint", run.string(), "--image", (dir.path / "input.png").string(),
                                "--out", (dir.path / "bad").string(), "--layer", "7"},
                               dir.path / "bad_layer.out");
  CHECK(bad_layer.status != 0);
  CHECK_THAT(bad_layer.output, Catch::Contains("--layer: expected -1 (the last) or a layer in [0, 3], got 7"));
  CHECK_FALSE(fs::exists(dir.path / "bad"));
}

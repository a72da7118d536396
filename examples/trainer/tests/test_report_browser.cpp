// index.html as a user sees it: rendered by a real browser, Debian's headless
// Chromium (scripts/lib/install-deps.sh installs it); every chart and the latest sample grid must be
// there. (test_training.cpp parses the same file as markup.)
#include "trainer/tests/helpers.hpp"

using namespace trainer_tests;

namespace {

/// The section of evaluate --run with scores made up (the page, not the scoring, is under test):
/// FID 40.5, 31.25 and 35 at steps 2, 4 and 6, the best at step 4.
void write_made_up_scores(const fs::path& run_dir) {
  evaluation::CheckpointTable table;
  for (auto [step, fid] : {std::pair<int64_t, double>{2, 40.5}, {4, 31.25}, {6, 35.0}}) {
    evaluation::CheckpointScore row;
    row.step = step;
    row.file = run_dir / "ckpt.safetensors";
    row.scores.fid = fid;
    row.scores.kid.mean = fid / 1000;
    table.rows.push_back(row);
  }
  table.best = 1;
  report::write_checkpoint_scores(run_dir, table, "features.pt");
}

}  // namespace

TEST_CASE("Headless Chromium shows every chart and the latest sample grid of index.html", "[report][browser]") {
  if (!patchgcl_test::on_path("chromium")) {
    WARN("chromium is not installed (scripts/lib/install-deps.sh installs it): index.html was not rendered");
    return;
  }
  TempDir dir("browser");
  auto config = tiny_config();
  config.steps = 6;
  RunOptions run;
  run.quiet = true;
  run.log_every = 2;
  run.sample_every = 3;
  run.checkpoint_every = 6;
  run.run_dir = dir.path / "run";
  train(config, run, torch::kCPU);
  write_made_up_scores(run.run_dir);
  report::write_run_index(run.run_dir, config);
  // --dump-dom prints the DOM after the page ran (its onload handlers included) for 5 s of virtual
  // time; --no-sandbox because tests may run as root.
  const std::string command = fmt::format(
      "chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 --user-data-dir='{}' "
      "--dump-dom 'file://{}' 2>/dev/null",
      (dir.path / "profile").string(), fs::absolute(run.run_dir / "index.html").string());
  const auto rendered = patchgcl_test::shell_output(command);
  const std::string& dom = rendered.text;
  const int status = rendered.status;
  INFO(dom.substr(0, 3000));
  if (status != 0 && dom.empty()) {
    WARN(fmt::format("chromium is installed but did not run (exit status {}): index.html was not rendered", status));
    return;
  }
  CHECK(status == 0);
  REQUIRE_THAT(dom, Catch::Contains("</html>"));
  // Every chart is an element of its own (a cut-off attribute swallowed the ones after it).
  size_t charts = 0;
  for (size_t p = 0; (p = dom.find("<svg", p)) != std::string::npos; ++p) ++charts;
  const auto log = report::read_log(run.run_dir / "log.jsonl");
  REQUIRE(log.size() == 3);
  size_t losses = 0;
  for (const auto& [key, value] : log.back())
    if (key.rfind("loss_", 0) == 0) {
      ++losses;
      CHECK_THAT(dom, Catch::Contains(">" + key + "</text>"));
    }
  CHECK(losses == 5);
  CHECK(charts == losses + 1 + 2);  // and the learning rate, FID and KID over the checkpoints
  CHECK_THAT(dom, Catch::Contains(">FID</text>") && Catch::Contains(">KID</text>") &&
                      Catch::Contains("best: step 4 (FID 31.25") && Catch::Contains("<td>31.2500</td>"));
  // The latest grid is on the page and the browser decoded it: its onload handler set its width.
  const size_t img = dom.find("<img src=\"samples/step_000006.png\"");
  REQUIRE(img != std::string::npos);
  CHECK_THAT(dom.substr(img, dom.find('>', img) - img), Catch::Contains(" width=\""));
}

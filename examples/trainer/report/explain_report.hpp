// The patch graph of a `--loss graph` run, watched while it trains: at every sample step,
// explain's three pictures (the paper's Fig. 9: neighbourhoods in A, pooling scores with the kept
// patches, Laplacian eigenvectors) of one fixed preview image go to run/graph/step_XXXXXX/, and
// index.html shows the newest large and every earlier step in a row below it.
//
// Drawing uses no random numbers (the nodes are a regular grid, explain.hpp), so a run that
// writes these pictures trains exactly as one that does not, and a resumed run stays identical.
#pragma once

#include "trainer/report/explain.hpp"
#include "trainer/report/report.hpp"
#include "trainer/train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer::explain {

/// The loss heads of a trainer of `--loss graph`; an error naming the loss otherwise.
inline patchgcl::GraphNCELossImpl& graph_loss(Trainer& trainer) {
  auto* loss = dynamic_cast<patchgcl::GraphNCELossImpl*>(trainer.F.module.get());
  if (!loss)
    throw std::invalid_argument(
        fmt::format("explain: expected a checkpoint trained with --loss graph (PatchGCL), got one "
                    "trained with --loss {}, which builds no graph",
                    to_string(trainer.config().loss)));
  return *loss;
}

/// run/graph/step_XXXXXX: where the pictures of `step` go.
inline std::filesystem::path step_folder(const std::filesystem::path& run, int64_t step) {
  return run / "graph" / fmt::format("step_{:06}", step);
}

/// Writes the pictures of `image` (a preview image, already at the training size) for the
/// trainer's current step; nothing for a loss that builds no graph.
inline void write_step_pictures(Trainer& trainer, const Image& image, const std::filesystem::path& run) {
  if (trainer.config().loss != LossKind::kGraph || image.empty()) return;
  ExplainOptions options;
  options.size = 0;
  // Only rank 0 draws: the heads' negatives from the other processes would wait for ranks that
  // are not drawing. The graphs drawn do not depend on the negatives.
  auto& loss = graph_loss(trainer);
  const auto all_processes = loss.options.negatives_from_all_processes();
  loss.options.negatives_from_all_processes(nullptr);
  struct Restore {
    patchgcl::GraphNCELossImpl& loss;
    std::shared_ptr<patchgcl::KeyAllGather> keys;
    ~Restore() { loss.options.negatives_from_all_processes(keys); }
  } restore{loss, all_processes};
  auto pictures = explain_image(
      loss, [&](const torch::Tensor& x) { return trainer.translate(x); },
      [&](const torch::Tensor& x) { return trainer.contrastive_features(x); }, image, options, trainer.device());
  write_pictures(step_folder(run, trainer.step()), image, pictures,
                 fmt::format("patch graph of the first preview image at step {}", trainer.step()));
}

/// The "Patch graph" section of index.html: the newest step's pictures at 3x with what to read in
/// them, then one row per earlier step, newest first. Empty when the run has no graph pictures.
inline std::string report_section(const std::filesystem::path& run) {
  namespace fs = std::filesystem;
  std::vector<std::string> steps;
  if (fs::is_directory(run / "graph"))
    for (const auto& e : fs::directory_iterator(run / "graph"))
      if (e.is_directory() && fs::exists(e.path() / "eigenvectors.png")) steps.push_back(e.path().filename().string());
  if (steps.empty()) return "";
  std::sort(steps.rbegin(), steps.rend());
  std::string html = "<h2>Patch graph (first preview image, deepest contrastive layer; docs/diagnostics.md)</h2>";
  auto out = std::back_inserter(html);
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string dir = "graph/" + steps[i];
    std::string summary;
    std::getline(std::ifstream(run / dir / "summary.txt"), summary);
    const int scale = i == 0 ? 3 : 1;
    fmt::format_to(out, "<div><p>{}: {}</p>", steps[i], report::html_escape(summary));
    const bool pooled = fs::exists(run / dir / "pooling.png");
    for (const char* name : {"neighbourhoods", "pooling", "eigenvectors"}) {
      if (std::string(name) == "pooling" && !pooled) continue;
      const char* caption = std::string(name) == "neighbourhoods" ? "A (Eq. 1): four patches and their neighbours"
                            : std::string(name) == "pooling"      ? "pooling scores &sigma;(S) (Eq. 5), kept framed"
                                                                  : "eigenvectors of I - Abar (Fig. 9(c))";
      fmt::format_to(out,
                     "<figure><img src='{}/{}.png' onload='this.width=this.naturalWidth*{}'>"
                     "<figcaption>{}</figcaption></figure>",
                     dir, name, scale, caption);
    }
    html += "</div>";
  }
  return html;
}

}  // namespace trainer::explain

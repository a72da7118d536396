// `explain --checkpoint RUN --image FILE --out DIR [--layer L] [--k K]`: the patch graph of a
// trained PatchGCL model over one image, drawn as in the paper's Fig. 9 (explain_draw.hpp), with
// the checkpoint's own feature extractor and loss heads (GraphNCELoss::inspect).
//
// The graph's nodes are a regular grid over the chosen layer's feature map (every location, or
// every s-th one so that at most `grid` x `grid` remain) instead of training's random sample: the
// pictures then tile the image. The heads work for any number of nodes; the InfoNCE values in
// the summary are over these nodes, not comparable with the training log's.
#pragma once

#include "trainer/data/image_tensor.hpp"
#include "trainer/report/explain_draw.hpp"

#include <patchgcl/patchgcl.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace trainer::explain {

struct ExplainOptions {
  int64_t layer = -1;  ///< feature layer (index into the loss's layers); -1: the last (deepest)
  int64_t k = 4;       ///< Laplacian eigenvectors drawn
  int64_t grid = 32;   ///< at most grid x grid nodes
  int size = 0;        ///< short side the image is resized to (0: the checkpoint's training size)
};

inline void check_options(const ExplainOptions& o, int64_t layers) {
  if (o.layer < -1 || o.layer >= layers)
    throw std::invalid_argument(
        fmt::format("--layer: expected -1 (the last) or a layer in [0, {}], got {}", layers - 1, o.layer));
  if (o.k < 1) throw std::invalid_argument(fmt::format("--k: expected at least 1 eigenvector, got {}", o.k));
  if (o.grid < 2) throw std::invalid_argument(fmt::format("--grid: expected at least 2, got {}", o.grid));
  if (o.grid > 64)
    throw std::invalid_argument(
        fmt::format("--grid: expected at most 64 (64 x 64 nodes: a 4096 x 4096 adjacency), got {}", o.grid));
  if (o.size != 0 && (o.size < 4 || o.size > 2048 || o.size % 4 != 0))
    throw std::invalid_argument(
        fmt::format("--size: expected 0 (the training size) or a multiple of 4 in [4, 2048], got {}", o.size));
}

/// `image` resized so its short side is `side` and both sides are multiples of 4 (the generator's stride).
inline Image fit(const Image& image, int side) {
  const double scale = static_cast<double>(side) / std::min(image.width, image.height);
  auto round4 = [](double v) { return std::max(4, static_cast<int>(std::lround(v / 4.0)) * 4); };
  return resize(image, round4(image.width * scale), round4(image.height * scale));
}

/// The graph of `loss` on `image` (already sized for the generator): G translates it, `features`
/// gives both pyramids, inspect records the graphs on a grid of nodes, and layer `layer` is drawn.
template <typename Translate, typename Features>
GraphPictures explain_image(patchgcl::GraphNCELossImpl& loss, Translate&& translate, Features&& features,
                            const Image& image, const ExplainOptions& options, torch::Device device) {
  const auto layers = static_cast<int64_t>(loss.options.in_channels().size());
  check_options(options, layers);
  torch::NoGradGuard no_grad;
  auto x = to_tensor(image).unsqueeze(0).to(device);
  auto output_features = features(translate(x));
  auto input_features = features(x);
  std::vector<torch::Tensor> ids;
  for (const auto& map : output_features)
    ids.push_back(grid_patch_ids(map.size(2), map.size(3), options.grid).to(device));
  auto record = loss.inspect(output_features, input_features, ids);
  const auto layer = static_cast<size_t>(options.layer < 0 ? layers - 1 : options.layer);
  auto pictures = draw(image, record.layers[layer], options.k);
  pictures.summary = fmt::format("layer {}: ", layer) + pictures.summary;
  return pictures;
}

/// "lambda_0 = 0.0000, lambda_1 = ..." (plain text).
inline std::string eigenvalue_text(const GraphPictures& p) {
  std::string text;
  for (size_t j = 0; j < p.eigenvalues.size(); ++j)
    text += fmt::format("{}lambda_{} = {:.4f}", j ? ", " : "", j, p.eigenvalues[j]);
  return text;
}

/// Writes input.png, neighbourhoods.png, pooling.png, eigenvectors.png, summary.txt and index.html to `dir`.
inline void write_pictures(const std::filesystem::path& dir, const Image& image, const GraphPictures& p,
                           const std::string& title) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    throw std::runtime_error(fmt::format("--out: cannot create the folder '{}': {}", dir.string(), error.message()));
  write_png(dir / "input.png", image);
  write_png(dir / "neighbourhoods.png", p.neighbourhoods);
  if (!p.pooling.empty()) write_png(dir / "pooling.png", p.pooling);
  write_png(dir / "eigenvectors.png", p.eigenvectors);
  std::ofstream(dir / "summary.txt") << p.summary << "\n" << eigenvalue_text(p) << "\n";
  std::string eigenvalues;
  for (size_t j = 0; j < p.eigenvalues.size(); ++j)
    eigenvalues += fmt::format("{}&lambda;<sub>{}</sub> = {:.4f}", j ? ", " : "", j, p.eigenvalues[j]);
  std::ofstream html(dir / "index.html");
  html << fmt::format(
      "<!doctype html><html><head><meta "
      "charset='utf-8'><title>{0}</title><style>body{{font-family:sans-serif;margin:16px}}"
      "figure{{display:inline-block;margin:8px;vertical-align:top}}</style></head><body><h1>{0}</h1><p>{1}</p>"
      "<figure><img src='input.png'><figcaption>input</figcaption></figure>"
      "<figure><img src='neighbourhoods.png'><figcaption>A: four patches (white frame) and their "
      "neighbours</figcaption></figure>",
      report::html_escape(title), report::html_escape(p.summary));
  if (!p.pooling.empty())
    html << "<figure><img src='pooling.png'><figcaption>pooling scores &sigma;(S) (Fig. 9(b)), kept nodes framed"
            "</figcaption></figure>";
  html << fmt::format(
      "<figure><img src='eigenvectors.png'><figcaption>eigenvectors of I - Abar (Fig. 9(c)): {}"
      "</figcaption></figure></body></html>\n",
      eigenvalues);
  if (!html) throw std::runtime_error(fmt::format("explain: cannot write {}", (dir / "index.html").string()));
}

}  // namespace trainer::explain

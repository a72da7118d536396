// The three pictures of `explain` (the paper's Fig. 9) from GraphNCELoss::inspect's record of one
// layer, drawn over the image the features came from (graph_render.hpp):
//
//   neighbourhoods  a few spread-out patches (white frame) and their neighbours in A (Eq. 1)
//   pooling         sigma(S) of every node (Eq. 5, Fig. 9(b)), the nodes kept by the first
//                   pooling level framed in white
//   eigenvectors    the first k eigenvectors of the normalised Laplacian I - Abar (Fig. 9(c)),
//                   eigenvalue in the caption file; blue < 0 < red, the sign of each is arbitrary
#pragma once

#include "trainer/report/graph_render.hpp"
#include "trainer/report/report.hpp"

#include <patchgcl/patchgcl.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer::explain {

struct GraphPictures {
  Image neighbourhoods;  ///< 2 x 2 panels, one chosen patch each
  Image pooling;         ///< empty when the loss has no pooling level
  Image eigenvectors;    ///< k panels side by side
  std::vector<double> eigenvalues;
  std::string summary;  ///< one line: nodes, edges, kept nodes, per-level InfoNCE
};

/// Every location of an h x w map, or every s-th row and column (one s for both, so that cells
/// stay square) so that at most `max_side` remain per side; row-major ids `r * w + c`.
inline torch::Tensor grid_patch_ids(int64_t height, int64_t width, int64_t max_side) {
  const int64_t stride = (std::max(height, width) + max_side - 1) / max_side;
  auto axis = [&](int64_t n) { return torch::arange(stride / 2, n, stride, torch::kLong); };
  auto rows = axis(height), cols = axis(width);
  return (rows.unsqueeze(1) * width + cols.unsqueeze(0)).flatten();
}

/// The nodes' cells: the distinct rows and columns the patches occupy, so that a regular sub-grid
/// of the map (grid_patch_ids) tiles the image without gaps between its nodes.
inline render::NodeGrid node_grid(const patchgcl::GraphLayerInspection& layer) {
  auto rows = at::_unique(layer.rows.cpu(), /*sorted=*/true, /*return_inverse=*/true);
  auto cols = at::_unique(layer.cols.cpu(), /*sorted=*/true, /*return_inverse=*/true);
  return {std::get<1>(rows), std::get<1>(cols), std::get<0>(rows).numel(), std::get<0>(cols).numel()};
}

/// Draws image 0 of `layer` over `image` (the network's input, `[H, W]` of any size).
inline GraphPictures draw(const Image& image, const patchgcl::GraphLayerInspection& layer, int64_t k) {
  GraphPictures out;
  const auto grid = node_grid(layer);
  const auto& level0 = layer.levels.at(0);
  auto adjacency = level0.adjacency[0].cpu();

  std::vector<std::vector<Image>> rows(2);
  const std::array<std::array<float, 3>, 4> colours = {
      {{0.90f, 0.30f, 0.20f}, {0.20f, 0.60f, 0.90f}, {0.95f, 0.75f, 0.10f}, {0.40f, 0.80f, 0.30f}}};
  const auto chosen = render::spread_nodes(grid, 2);
  for (size_t i = 0; i < chosen.size(); ++i)
    rows[i / 2].push_back(render::neighbourhood(image, grid, adjacency, chosen[i], colours[i]));
  out.neighbourhoods = report::grid(rows);

  if (layer.levels.size() > 1) {
    const auto& level1 = layer.levels[1];
    auto heat = render::heatmap(image, grid, level1.scores[0], /*signed_values=*/false);
    out.pooling = render::outline(heat, grid, level1.kept[0].cpu(), {1.0f, 1.0f, 1.0f});
  }

  const int64_t n = level0.abar.size(-1);
  if (k < 1 || k > n)
    throw std::invalid_argument(
        fmt::format("--k: expected 1 to N = {} eigenvectors (the nodes of the drawn layer's graph), "
                    "got {}",
                    n, k));
  const int64_t kk = k;
  auto pairs = patchgcl::functional::laplacian_eigenvectors(level0.abar[0].to(torch::kCPU, torch::kFloat64), kk);
  std::vector<Image> panels;
  for (int64_t j = 0; j < kk; ++j) {
    panels.push_back(render::heatmap(image, grid, pairs.eigenvectors.select(1, j), /*signed_values=*/true));
    const double lambda = pairs.eigenvalues[j].item<double>();
    out.eigenvalues.push_back(std::abs(lambda) < 1e-6 ? 0.0 : lambda);  // no "-0.0000" for a rounded zero
  }
  out.eigenvectors = report::grid({panels});

  const double edges = (adjacency.ne(0).sum().item<double>() - static_cast<double>(n)) / 2.0;
  out.summary = fmt::format("{} nodes on a {}x{} map, {:.0f} edges (mean degree {:.1f})", n, layer.height, layer.width,
                            edges, 2.0 * edges / static_cast<double>(n));
  for (size_t p = 0; p < layer.levels.size(); ++p)
    out.summary += fmt::format("; level {}: {} nodes, InfoNCE {:.4f}", p, layer.levels[p].adjacency.size(-1),
                               layer.levels[p].info_nce.item<double>());
  return out;
}

}  // namespace trainer::explain

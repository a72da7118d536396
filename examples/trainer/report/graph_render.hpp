// Pictures of a patch graph over its image, for `explain` (the paper's Fig. 9): every node is a
// location (row, col) of an h x w feature map and covers the matching cell of the image.
//
//   heatmap        one value per node (a pooling score, an eigenvector entry), colour-mapped over
//                  the node's cell and blended with the image; cells without a node stay grey
//   outline        a frame around chosen cells (the kept nodes of a pooling level)
//   neighbourhood  a chosen node (white frame) and the nodes it is connected to in A (filled)
#pragma once

#include "trainer/data/image_tensor.hpp"

#include <torch/torch.h>

#include <array>
#include <vector>

namespace trainer::render {

/// The geometry of a graph's nodes: node i sits at (rows[i], cols[i]) of a height x width map.
struct NodeGrid {
  torch::Tensor rows, cols;  ///< [N] int64
  int64_t height = 0, width = 0;
};

/// Image `[3, H, W]` in [0, 1] from the trainer's 8-bit image.
inline torch::Tensor to_unit(const Image& image) { return (to_tensor(image) + 1.0) * 0.5; }
inline Image from_unit(const torch::Tensor& rgb) { return from_tensor(rgb.clamp(0.0, 1.0) * 2.0 - 1.0); }

/// Piecewise-linear colour map through `anchors` (RGB in [0, 1]) for `t` in [0, 1]: `[..., 3]`.
inline torch::Tensor colour_map(const torch::Tensor& t, const std::vector<std::array<float, 3>>& anchors) {
  const auto n = static_cast<int64_t>(anchors.size());
  auto table = torch::empty({n, 3});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c) table[i][c] = anchors[static_cast<size_t>(i)][static_cast<size_t>(c)];
  auto x = t.to(torch::kFloat32).clamp(0.0, 1.0) * static_cast<double>(n - 1);
  auto lo = x.floor().clamp_max(static_cast<double>(n - 2)).to(torch::kLong);
  auto frac = (x - lo.to(torch::kFloat32)).unsqueeze(-1);
  return table.index({lo}) * (1.0 - frac) + table.index({lo + 1}) * frac;
}

/// Sequential map for scores in [0, 1] (dark violet -> teal -> yellow, viridis-like).
inline torch::Tensor sequential(const torch::Tensor& t) {
  return colour_map(t, {{0.27f, 0.00f, 0.33f},
                        {0.23f, 0.32f, 0.55f},
                        {0.13f, 0.57f, 0.55f},
                        {0.37f, 0.79f, 0.38f},
                        {0.99f, 0.91f, 0.14f}});
}

/// Diverging map for signed values in [-1, 1] (blue -> white -> red).
inline torch::Tensor diverging(const torch::Tensor& t) {
  return colour_map((t + 1.0) * 0.5, {{0.13f, 0.40f, 0.67f},
                                      {0.57f, 0.77f, 0.87f},
                                      {0.97f, 0.97f, 0.97f},
                                      {0.96f, 0.65f, 0.51f},
                                      {0.70f, 0.09f, 0.17f}});
}

/// Per-pixel index of the map cell (row or column) a pixel of an image of `pixels` lies in.
inline torch::Tensor cell_of_pixel(int64_t pixels, int64_t cells) {
  return (torch::arange(pixels, torch::kLong) * cells).div(pixels, "floor");
}

/// `[h, w, ...]` map values -> `[H, W, ...]` by nearest cell (the cell a pixel lies in).
inline torch::Tensor upsample_cells(const torch::Tensor& cells, int64_t height, int64_t width) {
  auto ry = cell_of_pixel(height, cells.size(0)), rx = cell_of_pixel(width, cells.size(1));
  return cells.index_select(0, ry).index_select(1, rx);
}

/// `colours` `[N, 3]` (RGB in [0, 1]) painted over the nodes' cells with opacity `alpha`; the
/// cells without a node are drawn in grey (the image, desaturated and dimmed).
inline Image paint_nodes(const Image& image, const NodeGrid& grid, const torch::Tensor& colours, double alpha) {
  auto base = to_unit(image);  // [3, H, W]
  const int64_t H = base.size(1), W = base.size(2);
  auto cell_rgb = torch::zeros({grid.height, grid.width, 3});
  auto cell_has = torch::zeros({grid.height, grid.width});
  auto flat = grid.rows * grid.width + grid.cols;
  cell_rgb.view({-1, 3}).index_copy_(0, flat, colours.to(torch::kFloat32));
  cell_has.view({-1}).index_fill_(0, flat, 1.0);
  auto rgb = upsample_cells(cell_rgb, H, W).permute({2, 0, 1});  // [3, H, W]
  auto has = upsample_cells(cell_has, H, W).unsqueeze(0);        // [1, H, W]
  auto grey = base.mean(0, true).expand({3, H, W}) * 0.6 + 0.2;
  auto painted = base * (1.0 - alpha) + rgb * alpha;
  return from_unit(has * painted + (1.0 - has) * grey);
}

/// A 1-pixel frame of `colour` around the cells of `nodes` (indices into the grid's nodes).
inline Image outline(const Image& image, const NodeGrid& grid, const torch::Tensor& nodes,
                     std::array<float, 3> colour) {
  auto base = to_unit(image);
  const int64_t H = base.size(1), W = base.size(2);
  auto marked = torch::zeros({grid.height * grid.width});
  marked.index_fill_(0, (grid.rows * grid.width + grid.cols).index_select(0, nodes.to(torch::kLong)), 1.0);
  auto inside = upsample_cells(marked.view({grid.height, grid.width}), H, W) > 0.5;  // [H, W]
  // A pixel is on the frame when it is inside a marked cell and a neighbouring pixel lies in another cell.
  auto ry = cell_of_pixel(H, grid.height), rx = cell_of_pixel(W, grid.width);
  auto edge_y = (ry != torch::roll(ry, 1)) | (ry != torch::roll(ry, -1));
  auto edge_x = (rx != torch::roll(rx, 1)) | (rx != torch::roll(rx, -1));
  edge_y.index_put_({0}, true);
  edge_y.index_put_({H - 1}, true);
  edge_x.index_put_({0}, true);
  edge_x.index_put_({W - 1}, true);
  auto frame = inside & (edge_y.unsqueeze(1) | edge_x.unsqueeze(0));
  auto c = torch::tensor({colour[0], colour[1], colour[2]}).view({3, 1, 1}).expand({3, H, W});
  return from_unit(torch::where(frame.unsqueeze(0).expand({3, H, W}), c, base));
}

/// Values `[N]` over the nodes, colour-mapped: sequential for `lo..hi` (scores), or diverging
/// and symmetric around 0 (`signed_values`: eigenvectors, whose sign is arbitrary).
inline Image heatmap(const Image& image, const NodeGrid& grid, const torch::Tensor& values, bool signed_values,
                     double alpha = 0.75) {
  auto v = values.detach().to(torch::kCPU, torch::kFloat32);
  torch::Tensor colours;
  if (signed_values) {
    const double scale = std::max(v.abs().max().item<double>(), 1e-12);
    colours = diverging(v / scale);
  } else {
    const double lo = v.min().item<double>(), hi = v.max().item<double>();
    colours = sequential(hi > lo ? (v - lo) / (hi - lo) : torch::zeros_like(v));
  }
  return paint_nodes(image, grid, colours, alpha);
}

/// Node `centre` (white frame) and its neighbours in `adjacency` `[N, N]` (0/1) filled in `colour`.
inline Image neighbourhood(const Image& image, const NodeGrid& grid, const torch::Tensor& adjacency, int64_t centre,
                           std::array<float, 3> colour) {
  auto row = adjacency.detach().to(torch::kCPU)[centre].ne(0).to(torch::kFloat32);  // [N]
  auto c = torch::tensor({colour[0], colour[1], colour[2]});
  auto colours = row.unsqueeze(1) * c + (1.0 - row.unsqueeze(1)) * torch::tensor({0.5f, 0.5f, 0.5f});
  auto painted = paint_nodes(image, grid, colours, 0.55);
  return outline(painted, grid, torch::tensor({centre}, torch::kLong), {1.0f, 1.0f, 1.0f});
}

/// Nodes nearest to the centres of a `n x n` arrangement over the map: a few spread-out patches.
inline std::vector<int64_t> spread_nodes(const NodeGrid& grid, int64_t n) {
  std::vector<int64_t> picked;
  auto r = grid.rows.to(torch::kFloat32), c = grid.cols.to(torch::kFloat32);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double y = (static_cast<double>(i) + 0.5) * static_cast<double>(grid.height) / static_cast<double>(n);
      const double x = (static_cast<double>(j) + 0.5) * static_cast<double>(grid.width) / static_cast<double>(n);
      picked.push_back(((r - y).pow(2) + (c - x).pow(2)).argmin().item<int64_t>());
    }
  return picked;
}

}  // namespace trainer::render

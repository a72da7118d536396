// Scores a translation of the embedded shapes dataset without a human, on the paired test split.
//
//   structure  = mean IoU( shape mask of the input , shape mask of the output )
//   texture    = sum E(output) / sum E(ground-truth B), E(img) = mean |d/dx lum| + |d/dy lum|
//                over the eroded shape interior: 0 for flat fills (domain A), 1 for B's stripes
//   score      = structure * min(texture, 1)
//
// A shape mask is every pixel whose colour is more than synthetic::kMaskThreshold away from the
// known background in some channel; the interior is eroded by 2 px so that the shape's own outline
// does not count as texture.
#pragma once

#include "trainer/data/synthetic.hpp"

#include <fmt/format.h>

#include <functional>

namespace trainer::evaluation {

/// `[H,W]` bool: pixels of an image `[3,H,W]` in [-1,1] that are not background.
inline torch::Tensor shape_mask(const torch::Tensor& image) {
  auto rgb = (image.detach().to(torch::kCPU, torch::kFloat32) + 1.0) * 0.5;
  auto bg =
      torch::tensor({synthetic::kBackground[0], synthetic::kBackground[1], synthetic::kBackground[2]}).view({3, 1, 1});
  return (rgb - bg).abs().amax(0) > synthetic::kMaskThreshold;
}

inline double iou(const torch::Tensor& a, const torch::Tensor& b) {
  auto inter = (a & b).sum().item<double>();
  auto uni = (a | b).sum().item<double>();
  return uni == 0 ? 1.0 : inter / uni;
}

/// Removes `radius` pixels from the border of a bool mask (min-filter as a negated max-pool).
inline torch::Tensor erode(const torch::Tensor& mask, int64_t radius) {
  auto inv = (~mask).to(torch::kFloat32).unsqueeze(0).unsqueeze(0);
  auto grown = torch::max_pool2d(inv, 2 * radius + 1, 1, radius);
  return (grown[0][0] < 0.5);
}

/// Mean absolute luminance gradient over `region` (`[H,W]` bool) of an image in [-1,1], in [0,1] units.
inline double gradient_energy(const torch::Tensor& image, const torch::Tensor& region) {
  auto rgb = (image.detach().to(torch::kCPU, torch::kFloat32) + 1.0) * 0.5;
  auto lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
  using torch::indexing::None;
  using torch::indexing::Slice;
  auto dx = (lum.index({Slice(), Slice(1, None)}) - lum.index({Slice(), Slice(None, -1)})).abs();
  auto dy = (lum.index({Slice(1, None), Slice()}) - lum.index({Slice(None, -1), Slice()})).abs();
  auto e = torch::zeros_like(lum);
  e.index({Slice(), Slice(None, -1)}) += dx;
  e.index({Slice(None, -1), Slice()}) += dy;
  auto n = region.sum().item<double>();
  return n == 0 ? 0.0 : e.masked_select(region).sum().item<double>() / n;
}

struct Scores {
  double structure = 0;  // mean IoU
  double texture = 0;    // stripe-texture ratio vs ground truth B
  double score = 0;
  int count = 0;
};

/// Scores `translate` (a batch `[1,3,H,W]` -> `[1,3,H,W]`, both in [-1,1]) on `count` test pairs.
inline Scores evaluate(const std::function<torch::Tensor(const torch::Tensor&)>& translate, int count, int size,
                       uint64_t seed) {
  using synthetic::Domain;
  Scores s;
  double energy_out = 0, energy_ref = 0;
  for (int i = 0; i < count; ++i) {
    auto spec = synthetic::make_spec(synthetic::Split::kTest, Domain::kA, i, size, seed);
    auto input = to_tensor(synthetic::render(spec, Domain::kA, size));
    auto reference = to_tensor(synthetic::render(spec, Domain::kB, size));
    auto output = translate(input.unsqueeze(0))[0].to(torch::kCPU);
    auto truth = synthetic::mask(spec, size);
    auto interior = erode(truth, 2);
    s.structure += iou(shape_mask(input), shape_mask(output));
    energy_out += gradient_energy(output, interior);
    energy_ref += gradient_energy(reference, interior);
  }
  s.count = count;
  s.structure /= count;
  s.texture = energy_ref == 0 ? 0 : energy_out / energy_ref;
  s.score = s.structure * std::min(1.0, s.texture);
  return s;
}

inline std::string to_json(const Scores& s) {
  return fmt::format("{{\"structure_iou\":{:.4f},\"stripe_texture\":{:.4f},\"score\":{:.4f},\"count\":{}}}",
                     s.structure, s.texture, s.score, s.count);
}

}  // namespace trainer::evaluation

// The embedded demo dataset: an unpaired "flat shapes -> striped shapes" translation task
// with a known correspondence, so that a translation can be scored without a human.
//
// Domain A: one flat-coloured shape (disc, square or triangle) on a light background.
// Domain B: the same kind of shape, filled with dark stripes of a fixed period and a random
//           orientation/phase (stripe colour = shape colour * kStripeDarkening).
// The training split is unpaired (A_i and B_i are drawn independently); in the test split
// testA_i and testB_i share the shape, so `evaluate` knows the mask the output must keep.
#pragma once

#include "trainer/data/image_tensor.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <random>

namespace trainer::synthetic {

/// Background colour of both domains, in [0,1]. Every palette colour and every stripe colour
/// differs from it by more than kMaskThreshold in some channel, so a shape mask is a colour test.
inline constexpr std::array<float, 3> kBackground = {0.92f, 0.90f, 0.86f};
inline constexpr float kMaskThreshold = 0.25f;
inline constexpr float kStripeDarkening = 0.25f;
inline constexpr std::array<std::array<float, 3>, 6> kPalette = {{{0.85f, 0.15f, 0.15f},
                                                                  {0.15f, 0.55f, 0.85f},
                                                                  {0.20f, 0.70f, 0.25f},
                                                                  {0.95f, 0.60f, 0.05f},
                                                                  {0.55f, 0.25f, 0.75f},
                                                                  {0.10f, 0.65f, 0.65f}}};

enum class Shape { kDisc, kSquare, kTriangle };

/// Everything that defines one sample; domain A and B renderings of the same spec share the mask.
struct ShapeSpec {
  Shape shape = Shape::kDisc;
  float cx = 0, cy = 0, radius = 0;  // in pixels
  int colour = 0;
  float stripe_angle = 0, stripe_phase = 0;
};

enum class Split { kTrain, kTest };
enum class Domain { kA, kB };

/// Stripe period in pixels for an image side: about 8 stripes across the image, at least 4 px.
inline float stripe_period(int size) { return std::max(4.0f, static_cast<float>(size) / 8.0f); }

/// Deterministic spec of sample `index`; the train split draws A and B from different streams
/// (unpaired), the test split uses one stream for both (paired ground truth).
inline ShapeSpec make_spec(Split split, Domain domain, int64_t index, int size, uint64_t seed) {
  uint64_t stream = split == Split::kTest ? 0x7E57ull : (domain == Domain::kA ? 0xAAAAull : 0xBBBBull);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull ^ (stream << 32) ^ static_cast<uint64_t>(index));
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  ShapeSpec s;
  s.shape = static_cast<Shape>(rng() % 3);
  s.radius = size * (0.18f + 0.14f * u(rng));
  float margin = s.radius + 1.0f;
  s.cx = margin + (size - 2 * margin) * u(rng);
  s.cy = margin + (size - 2 * margin) * u(rng);
  s.colour = static_cast<int>(rng() % kPalette.size());
  s.stripe_angle = static_cast<float>(M_PI) * 0.25f * static_cast<float>(rng() % 4);
  s.stripe_phase = u(rng);
  return s;
}

inline bool inside(const ShapeSpec& s, float x, float y) {
  float dx = x - s.cx, dy = y - s.cy;
  switch (s.shape) {
    case Shape::kDisc:
      return dx * dx + dy * dy <= s.radius * s.radius;
    case Shape::kSquare: {
      float h = s.radius * 0.85f;
      return std::abs(dx) <= h && std::abs(dy) <= h;
    }
    case Shape::kTriangle: {
      // Upward equilateral triangle inscribed in the circle of `radius`.
      float r = s.radius;
      float top = -r, bottom = 0.5f * r;
      if (dy < top || dy > bottom) return false;
      float half_width = (dy - top) / (bottom - top) * r * 0.8660254f;
      return std::abs(dx) <= half_width;
    }
  }
  return false;
}

/// Renders `spec` in the given domain at `size` x `size`, 3x3 supersampled for clean edges.
inline Image render(const ShapeSpec& s, Domain domain, int size) {
  Image img;
  img.width = img.height = size;
  img.pixels.resize(static_cast<size_t>(size) * size * 3);
  const auto& colour = kPalette[s.colour];
  float period = stripe_period(size);
  float ca = std::cos(s.stripe_angle), sa = std::sin(s.stripe_angle);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      std::array<float, 3> acc = {0, 0, 0};
      for (int sy = 0; sy < 3; ++sy)
        for (int sx = 0; sx < 3; ++sx) {
          float px = x + (sx + 0.5f) / 3.0f, py = y + (sy + 0.5f) / 3.0f;
          std::array<float, 3> c = kBackground;
          if (inside(s, px, py)) {
            c = colour;
            if (domain == Domain::kB) {
              float t = (px * ca + py * sa) / period + s.stripe_phase;
              if (t - std::floor(t) < 0.5f)
                for (auto& v : c) v *= kStripeDarkening;
            }
          }
          for (int k = 0; k < 3; ++k) acc[k] += c[k] / 9.0f;
        }
      for (int k = 0; k < 3; ++k)
        img.pixels[(static_cast<size_t>(y) * size + x) * 3 + k] =
            static_cast<uint8_t>(std::lround(std::clamp(acc[k], 0.0f, 1.0f) * 255.0f));
    }
  return img;
}

/// The exact shape mask of a spec (pixel centres), `[H,W]` bool.
inline torch::Tensor mask(const ShapeSpec& s, int size) {
  auto m = torch::zeros({size, size}, torch::kBool);
  auto acc = m.accessor<bool, 2>();
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) acc[y][x] = inside(s, x + 0.5f, y + 0.5f);
  return m;
}

inline Image sample(Split split, Domain domain, int64_t index, int size, uint64_t seed) {
  return render(make_spec(split, domain, index, size, seed), domain, size);
}

}  // namespace trainer::synthetic

#pragma once
// Fixtures of the evaluate --data / --folders / --run tests: a small random TorchScript feature
// network written by the test (--features-torchscript; the FID Inception's weights cannot be
// downloaded here), folders of smooth random images, stand-in generators, and a JSON number reader.
#include "trainer/eval/real_evaluation.hpp"
#include "trainer/tests/helpers.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>

namespace trainer_tests {
namespace eval_fixtures {

using trainer::Image;
using trainer::write_png;
namespace fs = std::filesystem;

/// A random feature network: conv 3x3 stride 2 -> ReLU -> global average pool, `dim` channels.
/// `tail` post-processes the pooled `[B, dim, 1, 1]` map (the wrong-output cases).
inline trainer::metrics::FeatureFile write_network(const fs::path& dir, int64_t dim,
                                                   const std::string& tail = "return h", uint64_t seed = 1) {
  torch::jit::Module m("FeatureNet");
  auto gen = at::detail::createCPUGenerator(seed);
  m.register_parameter("weight", at::randn({dim, 3, 3, 3}, gen, torch::TensorOptions()), false);
  m.register_parameter("bias", at::randn({dim}, gen, torch::TensorOptions()) * 0.1, false);
  m.define(R"(
def forward(self, x):
    h = torch.relu(torch.conv2d(x * 2.0 - 1.0, self.weight, self.bias, [2, 2], [1, 1]))
    h = torch.adaptive_avg_pool2d(h, [1, 1])
    )" + tail +
           "\n");
  const auto path = dir / fmt::format("features_{}.pt", dim);
  m.save(path.string());
  return {path, trainer::metrics::FeatureFormat::kTorchScript};
}

/// Smooth random colour fields (a few blobs), so that features vary between images.
inline Image random_image(int width, int height, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Image img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  const double cx = u(rng) * width, cy = u(rng) * height, r = (0.2 + 0.5 * u(rng)) * width;
  const double base[3] = {u(rng), u(rng), u(rng)}, blob[3] = {u(rng), u(rng), u(rng)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double w = std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (r * r));
      for (int c = 0; c < 3; ++c)
        img.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>(255.0 * ((1 - w) * base[c] + w * blob[c]) * (0.9 + 0.1 * u(rng)));
    }
  return img;
}

inline void write_folder(const fs::path& dir, int count, int width, int height, uint64_t seed) {
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) write_png(dir / fmt::format("{:03d}.png", i), random_image(width, height, seed + i));
}

/// A stand-in generator: darkens the image (the evaluation does not depend on how G works).
inline torch::Tensor darken(const torch::Tensor& x) { return x * 0.5 - 0.25; }
inline torch::Tensor identity(const torch::Tensor& x) { return x; }

inline double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  REQUIRE(at != std::string::npos);
  return std::stod(json.substr(at + key.size() + 3));
}

}  // namespace eval_fixtures
}  // namespace trainer_tests

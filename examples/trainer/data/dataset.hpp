// Unpaired data for the trainer: CycleGAN/CUT folders, single-image pairs, or the embedded
// synthetic shapes. Sampling is a pure function of (seed, step), which is what makes `--resume`
// continue exactly: the checkpoint's step counter is the data pipeline's whole RNG state.
#pragma once

#include "trainer/data/image_io.hpp"
#include "trainer/data/synthetic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

/// Name of the embedded dataset, accepted wherever a data folder is.
inline const std::string kSyntheticData = "synthetic";

struct DataOptions {
  /// A folder in the CycleGAN/CUT layout (trainA/, trainB/, testA/, testB/) or "synthetic".
  std::string root = kSyntheticData;
  /// CUT's resize_and_crop: images are resized to load_size x load_size, then randomly cropped.
  int load_size = 286;
  int crop_size = 256;
  bool flip = true;
  /// One image per domain; every sample is a random crop at a random scale (SinCUT-style).
  bool single_image = false;
  /// Smallest crop, as a fraction of the image's short side, in single-image mode.
  double min_zoom = 0.25;
  /// Side and number of images per domain of the embedded dataset.
  int synthetic_size = 64;
  int synthetic_count = 400;
  uint64_t seed = 0;
};

/// splitmix64: decorrelates the per-step seeds derived from (seed, step, slot).
inline uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b * 0xBF58476D1CE4E5B9ull + c * 0x94D049BB133111EBull + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

using synthetic::Domain;

struct Batch {
  torch::Tensor real_A;  // [B,3,H,W] in [-1,1]
  torch::Tensor real_B;
};

class UnpairedDataset {
 public:
  explicit UnpairedDataset(DataOptions options) : options_(std::move(options)) {
    if (options_.crop_size < 16 || options_.crop_size % 4 != 0)
      throw std::invalid_argument(
          fmt::format("crop size must be a multiple of 4 and at least 16 (got {})", options_.crop_size));
    if (options_.root == kSyntheticData) {
      load_synthetic();
    } else {
      load_folders();
    }
  }

  const DataOptions& options() const { return options_; }
  bool synthetic() const { return options_.root == kSyntheticData; }
  /// Images that could not be decoded and were skipped (with a warning each).
  int skipped() const { return skipped_; }
  const std::vector<Image>& domain_A() const { return A_; }
  const std::vector<Image>& domain_B() const { return B_; }
  /// Epoch length in samples: the larger domain, as CUT's unaligned dataset.
  int64_t size() const { return static_cast<int64_t>(std::max(A_.size(), B_.size())); }
  int image_size() const { return synthetic() ? options_.synthetic_size : options_.crop_size; }

  /// The training batch of `step`; depends only on (options.seed, step, batch_size, rank, world).
  /// Sample g takes A in a per-epoch shuffled order and B uniformly at random, with augmentation
  /// seeded from (seed, g). Of `world` processes, rank r's j-th image is global sample
  /// g = (step * batch_size + j) * world + r (DistributedSampler's rank striding): the ranks'
  /// batches of a step are together the one-process batch of batch_size * world images.
  Batch batch(int64_t step, int batch_size, int rank = 0, int world = 1) const {
    std::vector<torch::Tensor> a, b;
    for (int j = 0; j < batch_size; ++j) {
      int64_t g = (step * batch_size + j) * world + rank;
      int64_t n = static_cast<int64_t>(A_.size());
      int64_t epoch = g / n;
      std::vector<int64_t> perm(static_cast<size_t>(n));
      std::iota(perm.begin(), perm.end(), 0);
      std::mt19937_64 shuffle_rng(mix_seed(options_.seed, static_cast<uint64_t>(epoch), 1));
      std::shuffle(perm.begin(), perm.end(), shuffle_rng);
      std::mt19937_64 rng(mix_seed(options_.seed, static_cast<uint64_t>(g), 2));
      const Image& image_a = A_[static_cast<size_t>(perm[static_cast<size_t>(g % n)])];
      const Image& image_b = B_[static_cast<size_t>(rng() % B_.size())];
      a.push_back(to_tensor(augment(image_a, rng)));
      b.push_back(to_tensor(augment(image_b, rng)));
    }
    return {torch::stack(a), torch::stack(b)};
  }

  /// Fixed images for sample grids and evaluation: the test split when there is one.
  /// Returned at the training resolution (no random augmentation).
  std::vector<Image> preview(Domain domain, int count) const {
    std::vector<Image> out;
    if (synthetic()) {
      for (int i = 0; i < count; ++i)
        out.push_back(synthetic::sample(synthetic::Split::kTest, domain, i, options_.synthetic_size, options_.seed));
      return out;
    }
    const auto& pool = domain == Domain::kA ? test_A_ : test_B_;
    const auto& fallback = domain == Domain::kA ? A_ : B_;
    const auto& src = pool.empty() ? fallback : pool;
    for (size_t i = 0; i < static_cast<size_t>(std::max(count, 0)) && i < src.size(); ++i) {
      const Image& img = src[i];
      out.push_back(options_.single_image ? center_view(img) : resize(img, options_.crop_size, options_.crop_size));
    }
    return out;
  }

 private:
  Image augment(const Image& image, std::mt19937_64& rng) const {
    Image out;
    const int crop = options_.crop_size;
    if (synthetic()) {
      out = image;
    } else if (options_.single_image) {
      // Random scale: a square region between min_zoom and 1 of the short side, resized to crop.
      int short_side = std::min(image.width, image.height);
      double lo = std::log(std::min(1.0, std::max(options_.min_zoom, static_cast<double>(crop) / short_side)));
      double s = std::exp(lo + (0.0 - lo) * std::uniform_real_distribution<double>(0, 1)(rng));
      int region = std::max(crop / 4, static_cast<int>(std::lround(s * short_side)));
      region = std::min(region, short_side);
      int x0 = static_cast<int>(rng() % static_cast<uint64_t>(image.width - region + 1));
      int y0 = static_cast<int>(rng() % static_cast<uint64_t>(image.height - region + 1));
      out = resize(sub_image(image, x0, y0, region, region), crop, crop);
    } else {
      // Cached images are already load_size x load_size.
      int range = options_.load_size - crop + 1;
      int x0 = static_cast<int>(rng() % static_cast<uint64_t>(range));
      int y0 = static_cast<int>(rng() % static_cast<uint64_t>(range));
      out = sub_image(image, x0, y0, crop, crop);
    }
    if (options_.flip && (rng() & 1)) out = flip_horizontal(out);
    return out;
  }

  static Image sub_image(const Image& image, int x0, int y0, int w, int h) {
    Image out;
    out.width = w;
    out.height = h;
    out.pixels.resize(static_cast<size_t>(w) * h * 3);
    for (int y = 0; y < h; ++y)
      std::copy_n(&image.pixels[(static_cast<size_t>(y0 + y) * image.width + x0) * 3], static_cast<size_t>(w) * 3,
                  &out.pixels[static_cast<size_t>(y) * w * 3]);
    return out;
  }

  static Image flip_horizontal(const Image& image) {
    Image out = image;
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x)
        for (int k = 0; k < 3; ++k)
          out.pixels[(static_cast<size_t>(y) * image.width + x) * 3 + k] =
              image.pixels[(static_cast<size_t>(y) * image.width + (image.width - 1 - x)) * 3 + k];
    return out;
  }

  /// Whole single image, resized so its short side is crop_size*2 and both sides are multiples of 4.
  Image center_view(const Image& image) const {
    double scale = 2.0 * options_.crop_size / std::min(image.width, image.height);
    int w = std::max(4, static_cast<int>(std::lround(image.width * scale / 4.0)) * 4);
    int h = std::max(4, static_cast<int>(std::lround(image.height * scale / 4.0)) * 4);
    return resize(image, w, h);
  }

  void load_synthetic() {
    const int n = options_.synthetic_count, size = options_.synthetic_size;
    if (n < 1) throw std::invalid_argument("the synthetic dataset needs at least one image per domain");
    for (int i = 0; i < n; ++i) {
      A_.push_back(synthetic::sample(synthetic::Split::kTrain, Domain::kA, i, size, options_.seed));
      B_.push_back(synthetic::sample(synthetic::Split::kTrain, Domain::kB, i, size, options_.seed));
    }
  }

  void load_folders() {
    namespace fs = std::filesystem;
    const fs::path root(options_.root);
    if (!fs::is_directory(root))
      throw std::runtime_error("data folder '" + root.string() +
                               "' does not exist (expected the CycleGAN/CUT layout "
                               "trainA/, trainB/[, testA/, testB/], or '" +
                               kSyntheticData + "')");
    for (const char* sub : {"trainA", "trainB"})
      if (!fs::is_directory(root / sub))
        throw std::runtime_error("data folder '" + root.string() + "' has no " + sub +
                                 "/ (expected the CycleGAN/CUT layout trainA/, trainB/[, testA/, testB/])");
    A_ = load_domain(root / "trainA", true);
    B_ = load_domain(root / "trainB", true);
    if (fs::is_directory(root / "testA")) test_A_ = load_domain(root / "testA", false);
    if (fs::is_directory(root / "testB")) test_B_ = load_domain(root / "testB", false);
    if (options_.single_image && (A_.size() != 1 || B_.size() != 1))
      std::cerr << fmt::format("warning: single-image mode uses the first image of each domain (found {} and {})\n",
                               A_.size(), B_.size());
    if (options_.single_image) {
      A_.resize(1);
      B_.resize(1);
    }
  }

  std::vector<Image> load_domain(const std::filesystem::path& dir, bool required) {
    std::vector<Image> images;
    const auto files = list_images(dir);
    const int skipped_before = skipped_;
    if (!options_.single_image && options_.load_size < options_.crop_size)
      throw std::invalid_argument("load size must be at least the crop size");
    for (const auto& file : files) {
      Image image = read_image_or_skip(file, skipped_);
      if (image.empty()) continue;
      if (options_.single_image) {
        if (std::min(image.width, image.height) < options_.crop_size)
          image = resize(image, std::max(options_.crop_size, image.width * options_.crop_size / image.height),
                         std::max(options_.crop_size, image.height * options_.crop_size / image.width));
        images.push_back(std::move(image));
        if (images.size() == 1 && required) break;  // only the first image is used
      } else {
        images.push_back(resize(image, options_.load_size, options_.load_size));
      }
    }
    if (images.empty() && required)
      throw std::runtime_error(
          fmt::format("domain folder '{}' has no readable images ({} image files, {} skipped as unreadable)",
                      dir.string(), files.size(), skipped_ - skipped_before));
    return images;
  }

  DataOptions options_;
  std::vector<Image> A_, B_, test_A_, test_B_;
  int skipped_ = 0;
};

}  // namespace trainer

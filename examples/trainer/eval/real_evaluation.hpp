// `evaluate --data DIR --features FILE`: FID and KID (fid_kid.hpp) between the translated A
// images and the real B images of a real dataset, in the features of the FID network
// (feature_network.hpp).
//
//   folders       DIR/testA, DIR/testB (CycleGAN/CUT layout): every readable image of testA is
//                 translated; the real set is every readable image of testB. FID compares the two
//                 sets' feature statistics, so the sets need not be paired or equally large.
//   single image  one image per domain (testA/testB if present, else trainA/trainB, first file by
//                 name), both resized to a short side of `view_size`: the A image is translated
//                 whole, then `crops` random square crops of the translation and of the B image
//                 (seeded, positions drawn independently per side) are the two sets: a single
//                 pair has no image population, so its internal patch statistics are compared.
//
// A feature set of N images has a covariance of rank <= N - 1: FID needs N >= 2 per side (an
// error below), and is biased and noisy while N <= D (pytorch-fid recommends N >= 2048 for its
// 2048-D features); the JSON says so in `fid_rank_deficient`. KID is unbiased for any N >= 2.
#pragma once

#include "trainer/data/image_tensor.hpp"
#include "trainer/eval/feature_network.hpp"
#include "trainer/eval/fid_kid.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer::evaluation {

/// G: a batch `[1, 3, H, W]` in [-1, 1] -> `[1, 3, H, W]` in [-1, 1].
using Translate = std::function<torch::Tensor(const torch::Tensor&)>;

/// Feature vectors per side needed for a defined FID (a covariance) and KID (pairs i != j).
constexpr int64_t kMinImages = 2;

struct RealDataOptions {
  int size = 0;               ///< folders: 0 keeps the images' own size (one size per folder), N resizes to N x N
  int crops = 64;             ///< single image: crops per side
  int crop_size = 128;        ///< single image: side of a crop
  int view_size = 256;        ///< single image: short side both images are resized to
  int64_t real_channels = 3;  ///< the model's output channels: 1 scores the real images in grayscale (repeated to RGB)
  int batch = 16;             ///< images per batch through the feature network
  metrics::KidOptions kid;
};

struct RealScores {
  std::string mode;  ///< "folders" or "single-image"
  double fid = 0;
  metrics::KidResult kid;
  int64_t translated = 0, real = 0, dim = 0;
  bool rank_deficient = false;  ///< fewer feature vectors than dimensions on a side
};

inline int round_to_4(double side) { return std::max(4, static_cast<int>(std::lround(side / 4.0)) * 4); }

/// Every readable image of `dir` (label: "testA", ...), resized to `size` x `size` when size > 0,
/// else to the nearest multiples of `multiple` (4: the generator's stride; 1: kept as they are);
/// all of one size. `option` names the command-line option the folder came from.
inline std::vector<Image> load_folder(const std::filesystem::path& dir, const std::string& label, int size,
                                      int multiple = 4, const std::string& option = "--data") {
  if (!std::filesystem::is_directory(dir))
    throw std::invalid_argument(
        fmt::format("{}: expected a folder {}, got '{}', which does not exist", option, label, dir.string()));
  const auto files = list_images(dir);
  int skipped = 0;
  std::vector<Image> images;
  std::filesystem::path first;
  for (const auto& file : files) {
    Image image = read_image_or_skip(file, skipped);
    if (image.empty()) continue;
    if (size > 0) {
      image = resize(image, size, size);
    } else {
      if (!images.empty() && (image.width != images[0].width || image.height != images[0].height))
        throw std::invalid_argument(fmt::format(
            "{}: the images of {} have mixed sizes: '{}' is {}x{}, '{}' is {}x{}; expected one size per folder, "
            "or pass --size N to resize all of them to N x N",
            option, label, first.filename().string(), images[0].width, images[0].height, file.filename().string(),
            image.width, image.height));
      if (images.empty()) first = file;
      if (multiple > 1) {
        const int w = round_to_4(image.width), h = round_to_4(image.height);
        if (w != image.width || h != image.height) image = resize(image, w, h);
      }
    }
    images.push_back(std::move(image));
  }
  if (static_cast<int64_t>(images.size()) < kMinImages)
    throw std::invalid_argument(fmt::format(
        "{}: {} ('{}') has {} readable image(s) ({} image files, {} unreadable); FID and KID need at least {} per "
        "side, and FID is only stable with more images than feature dimensions (2049 for Inception's 2048)",
        option, label, dir.string(), images.size(), files.size(), skipped, kMinImages));
  return images;
}

/// Runs `net` over `images` (`[3, H, W]` each, one size) in batches; `[N, D]` float64.
inline torch::Tensor batched_features(metrics::FeatureNetwork& net, const std::vector<torch::Tensor>& images,
                                      int batch) {
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < images.size(); i += static_cast<size_t>(batch)) {
    const auto end = std::min(images.size(), i + static_cast<size_t>(batch));
    parts.push_back(net.features(torch::stack(std::vector<torch::Tensor>(images.begin() + i, images.begin() + end))));
  }
  return torch::cat(parts);
}

inline RealScores score(const torch::Tensor& translated, const torch::Tensor& real, const RealDataOptions& options,
                        std::string mode) {
  RealScores s;
  s.mode = std::move(mode);
  s.translated = translated.size(0);
  s.real = real.size(0);
  s.dim = translated.size(1);
  s.fid = metrics::fid(translated, real);
  s.kid = metrics::kid(translated, real, options.kid);
  s.rank_deficient = std::min(s.translated, s.real) <= s.dim;
  return s;
}

inline void check_options(const RealDataOptions& o, bool single_image) {
  auto bad = [](const char* option, const std::string& expected, int value) {
    throw std::invalid_argument(fmt::format("{}: expected {}, got {}", option, expected, value));
  };
  if (o.size != 0 && (o.size < 4 || o.size % 4 != 0)) bad("--size", "0 (keep) or a multiple of 4", o.size);
  if (single_image) {
    if (o.crops < kMinImages) bad("--crops", fmt::format("at least {}", kMinImages), o.crops);
    if (o.crop_size < 4 || o.crop_size % 4 != 0) bad("--crop-size", "a multiple of 4", o.crop_size);
    if (o.view_size < o.crop_size)
      bad("--view-size", fmt::format("at least --crop-size ({})", o.crop_size), o.view_size);
  }
  if (o.batch < 1) bad("--batch", "at least 1", o.batch);
  if (o.kid.subsets < 1) bad("--kid-subsets", "at least 1", static_cast<int>(o.kid.subsets));
  if (o.kid.subset_size < 2) bad("--kid-subset-size", "at least 2", static_cast<int>(o.kid.subset_size));
}

/// `count` seeded random `side` x `side` crops of `[3, H, W]`.
inline std::vector<torch::Tensor> random_crops(const torch::Tensor& image, int count, int side, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> y(0, image.size(1) - side), x(0, image.size(2) - side);
  std::vector<torch::Tensor> crops;
  for (int i = 0; i < count; ++i) {
    const int64_t top = y(rng), left = x(rng);
    crops.push_back(image.slice(1, top, top + side).slice(2, left, left + side).contiguous());
  }
  return crops;
}

/// The first image file of `dir`/`name`, for a single-image pair.
inline std::filesystem::path first_image(const std::filesystem::path& root, const std::string& test,
                                         const std::string& train) {
  for (const auto& sub : {test, train}) {
    if (!std::filesystem::is_directory(root / sub)) continue;
    const auto files = list_images(root / sub);
    if (files.empty())
      throw std::invalid_argument(
          fmt::format("--data: {}/ in '{}' has no image files; expected one image per domain "
                      "for a single-image run",
                      sub, root.string()));
    return files.front();
  }
  throw std::invalid_argument(fmt::format("--data: '{}' has neither {}/ nor {}/ (expected the CycleGAN/CUT layout)",
                                          root.string(), test, train));
}

/// The real side of an evaluation, prepared once (images read, real features computed), and the
/// translated side scored for any number of generators: `evaluate --run` scores every kept
/// checkpoint of a run against the same real features.
///   folders       G(testA) vs testB;
///   single image  crops of G(A) vs crops of B (the crop positions are the same for every G).
class RealDataScorer {
 public:
  RealDataScorer(metrics::FeatureNetwork& net, const std::filesystem::path& root, const RealDataOptions& options,
                 bool single_image)
      : net_(net), options_(options), single_image_(single_image) {
    check_options(options, single_image);
    if (!single_image) {
      inputs_ = load_folder(root / "testA", "testA", options.size);
      const auto reals = load_folder(root / "testB", "testB", options.size);
      std::vector<torch::Tensor> real;
      for (const auto& image : reals)
        real.push_back(to_channels(to_channels(to_tensor(image), options.real_channels), 3));
      real_features_ = batched_features(net, real, options.batch);
      return;
    }
    auto view = [&](const std::filesystem::path& file) {
      std::string error;
      Image image = read_image(file, &error);
      if (image.empty()) throw std::invalid_argument(fmt::format("--data: cannot read '{}': {}", file.string(), error));
      const double scale = static_cast<double>(options.view_size) / std::min(image.width, image.height);
      return to_tensor(resize(image, round_to_4(image.width * scale), round_to_4(image.height * scale)));
    };
    single_a_ = view(first_image(root, "testA", "trainA"));
    const auto b = to_channels(to_channels(view(first_image(root, "testB", "trainB")), options.real_channels), 3);
    real_features_ =
        batched_features(net, random_crops(b, options.crops, options.crop_size, options.kid.seed + 1), options.batch);
  }

  /// FID and KID of `translate`'s outputs against the real features.
  RealScores score(const Translate& translate) {
    std::vector<torch::Tensor> translated;
    {
      torch::NoGradGuard no_grad;
      if (!single_image_) {
        for (const auto& image : inputs_)
          translated.push_back(translate(to_tensor(image).unsqueeze(0))[0].to(torch::kCPU));
      } else {
        translated = random_crops(translate(single_a_.unsqueeze(0))[0].to(torch::kCPU), options_.crops,
                                  options_.crop_size, options_.kid.seed);
      }
    }
    return evaluation::score(batched_features(net_, translated, options_.batch), real_features_, options_,
                             single_image_ ? "single-image" : "folders");
  }

 private:
  metrics::FeatureNetwork& net_;
  RealDataOptions options_;
  bool single_image_;
  std::vector<Image> inputs_;  // folders: testA
  torch::Tensor single_a_;     // single image: the A view
  torch::Tensor real_features_;
};

/// Folders: G(testA) vs testB.
inline RealScores evaluate_folders(const Translate& translate, metrics::FeatureNetwork& net,
                                   const std::filesystem::path& root, const RealDataOptions& options) {
  return RealDataScorer(net, root, options, false).score(translate);
}

/// Single image: crops of G(A) vs crops of B.
inline RealScores evaluate_single_image(const Translate& translate, metrics::FeatureNetwork& net,
                                        const std::filesystem::path& root, const RealDataOptions& options) {
  return RealDataScorer(net, root, options, true).score(translate);
}

/// `evaluate --folders X Y`: FID and KID between two folders of images, no generator (as
/// pytorch-fid's two paths): every readable image of each, at its own size (one size per folder,
/// or --size N), the first folder reported as "translated", the second as "real".
inline RealScores evaluate_two_folders(metrics::FeatureNetwork& net, const std::filesystem::path& first,
                                       const std::filesystem::path& second, const RealDataOptions& options) {
  check_options(options, false);
  auto features = [&](const std::filesystem::path& dir, const char* label) {
    std::vector<torch::Tensor> images;
    for (const auto& image : load_folder(dir, label, options.size, 1, "--folders")) images.push_back(to_tensor(image));
    return batched_features(net, images, options.batch);
  };
  const auto a = features(first, "(the first)");
  return score(a, features(second, "(the second)"), options, "two-folders");
}

inline std::string to_json(const RealScores& s) {
  return fmt::format(
      "{{\"mode\":\"{}\",\"fid\":{:.6f},\"kid\":{:.6f},\"kid_std\":{:.6f},\"kid_subsets\":{},\"kid_subset_size\":{},"
      "\"translated\":{},\"real\":{},\"feature_dim\":{},\"fid_rank_deficient\":{}}}",
      s.mode, s.fid, s.kid.mean, s.kid.std, s.kid.subsets, s.kid.subset_size, s.translated, s.real, s.dim,
      s.rank_deficient ? "true" : "false");
}

}  // namespace trainer::evaluation

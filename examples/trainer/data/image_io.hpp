// Image files of the example trainer: reading (every file from outside is hostile), PNG writing
// and resampling, on stb_image, stb_image_write and stb_image_resize. No LibTorch here, so a fuzz
// target of the reader builds in seconds; image_tensor.hpp converts to and from tensors.
//
// The trainer keeps decoded images as 8-bit RGB (`Image`) and converts to float tensors only
// when a batch is assembled: a whole unpaired dataset then costs 3 bytes a pixel in memory.
// Exactly one translation unit defines PATCHGCL_TRAINER_STB_IMPLEMENTATION before including this.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer {

/// 8-bit RGB image, row-major HWC.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
  bool empty() const { return pixels.empty(); }
};

/// Decodes a JPEG/PNG/BMP/... file to RGB; returns an empty image (and sets `error`) when it cannot.
Image read_image(const std::filesystem::path& path, std::string* error = nullptr);
/// `read_image` for a folder scan: an unreadable file gets a warning on stderr, increments
/// `skipped` and comes back empty, so the caller skips it.
Image read_image_or_skip(const std::filesystem::path& path, int& skipped);
/// Writes an RGB PNG; throws std::runtime_error on failure.
void write_png(const std::filesystem::path& path, const Image& image);
/// Resamples to exactly `width` x `height` (stb's Mitchell/Catmull-Rom filters, so downscaling is anti-aliased).
Image resize(const Image& image, int width, int height);

/// True for the file extensions the loaders understand (case-insensitive).
inline bool is_image_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tga";
}

/// Entries directly inside `dir` whose names end in an image extension, sorted by name so that runs
/// are reproducible. Entries that are not regular files (a folder named x.jpg, a dangling link) are
/// listed too: read_image_or_skip then warns about them and counts them instead of dropping them silently.
inline std::vector<std::filesystem::path> list_images(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (is_image_file(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace trainer

#include "trainer/data/image_decode.hpp"

#ifdef PATCHGCL_TRAINER_STB_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#endif
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

namespace trainer {

inline Image read_image(const std::filesystem::path& path, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  const char* problem = !fs::exists(status) ? "no such file"
                        : fs::is_directory(status) ? "a directory, not an image file"
                        : !fs::is_regular_file(status) ? "not a regular file"
                        : fs::file_size(path, ec) == 0 ? "empty file (0 bytes)" : nullptr;
  if (problem) {
    if (error) *error = problem;
    return {};
  }
  // Every image comes from outside: decode_rgb checks the header (pixel limit) and the format's
  // known stb defects before stb decodes anything (image_decode.hpp).
  const DecodeLimits& limits = decode_limits();
  if (const auto bytes = fs::file_size(path, ec); !ec && bytes > static_cast<uintmax_t>(limits.max_file_bytes())) {
    if (error)
      *error = fmt::format("file of {} bytes, larger than any image within the pixel limit of {} "
                           "(--max-image-pixels raises it)", bytes, limits.max_pixels);
    return {};
  }
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Image image;
  std::string reason;
  if (in.bad()) reason = "cannot be read";
  else if (decode_rgb(data.data(), data.size(), limits, image.width, image.height, image.pixels, reason)) return image;
  if (error) *error = reason;
  return {};
}

inline Image read_image_or_skip(const std::filesystem::path& path, int& skipped) {
  std::string error;
  Image image = read_image(path, &error);
  if (image.empty()) {
    std::cerr << fmt::format("warning: skipping unreadable image {} ({})\n", path.string(), error);
    ++skipped;
  }
  return image;
}

inline void write_png(const std::filesystem::path& path, const Image& image) {
  // Written to PATH.tmp and renamed, so a killed process never leaves a half-written PNG under PATH.
  const std::string tmp = path.string() + ".tmp";
  if (!stbi_write_png(tmp.c_str(), image.width, image.height, 3, image.pixels.data(), image.width * 3)) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot write PNG " + path.string());
  }
  std::filesystem::rename(tmp, path);
}

inline Image resize(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  stbir_resize_uint8_srgb(image.pixels.data(), image.width, image.height, 0, out.pixels.data(), width,
                          height, 0, 3, STBIR_ALPHA_CHANNEL_NONE, 0);
  return out;
}

}  // namespace trainer

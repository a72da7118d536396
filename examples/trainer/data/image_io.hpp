// Image files of the example trainer: reading JPEG and PNG (every file from outside is hostile:
// image_decode.hpp, on libjpeg-turbo and libpng), writing PNG (libpng), and resampling
// (stb_image_resize, Debian's libstb-dev: no decoder of stb is compiled). No LibTorch here;
// image_tensor.hpp converts to and from tensors.
//
// The trainer keeps decoded images as 8-bit RGB (`Image`) and converts to float tensors only
// when a batch is assembled: a whole unpaired dataset then costs 3 bytes a pixel in memory.
// Exactly one translation unit defines PATCHGCL_TRAINER_STB_IMPLEMENTATION (stb_image_resize's
// definitions) before including this.
#pragma once

#include "trainer/data/image_decode.hpp"

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

/// Decodes a JPEG or PNG file with its own channels (1 or 3, image_decode.hpp's decode_image);
/// returns an empty image (and sets `error`) when it cannot.
DecodedImage read_decoded_image(const std::filesystem::path& path, std::string* error = nullptr);
/// Decodes a JPEG or PNG file to RGB; returns an empty image (and sets `error`) when it cannot.
Image read_image(const std::filesystem::path& path, std::string* error = nullptr);
/// `read_image` for a folder scan: an unreadable file gets a warning on stderr, increments
/// `skipped` and comes back empty, so the caller skips it.
Image read_image_or_skip(const std::filesystem::path& path, int& skipped);
/// Writes an RGB PNG; throws std::runtime_error on failure.
void write_png(const std::filesystem::path& path, const Image& image);
/// Writes an 8-bit PNG of `channels` (1: gray, 3: RGB) from row-major pixels; throws std::runtime_error on failure.
void write_png(const std::filesystem::path& path, int width, int height, int channels,
               const std::vector<uint8_t>& pixels);
/// Resamples to exactly `width` x `height` (stb's Mitchell/Catmull-Rom filters, so downscaling is anti-aliased).
Image resize(const Image& image, int width, int height);

/// True for the file extensions the loaders look at (case-insensitive): JPEG and PNG, which they
/// read, and other image formats (BMP, TGA, GIF, WebP, TIFF), which they refuse with a warning
/// naming the file and the supported formats rather than leave out silently.
inline bool is_image_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif", ".webp", ".tif", ".tiff"})
    if (ext == known) return true;
  return false;
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

#ifdef PATCHGCL_TRAINER_STB_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#endif
#include <stb/stb_image_resize.h>

namespace trainer {

inline DecodedImage read_decoded_image(const std::filesystem::path& path, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  const char* problem = !fs::exists(status)            ? "no such file"
                        : fs::is_directory(status)     ? "a directory, not an image file"
                        : !fs::is_regular_file(status) ? "not a regular file"
                        : fs::file_size(path, ec) == 0 ? "empty file (0 bytes)"
                                                       : nullptr;
  if (problem) {
    if (error) *error = problem;
    return {};
  }
  // Every image comes from outside: decode_image checks the format and the header (pixel limit)
  // before anything of the image is allocated (image_decode.hpp); the file's size is checked
  // before it is read into memory.
  const DecodeLimits& limits = decode_limits();
  if (const auto bytes = fs::file_size(path, ec); !ec && bytes > static_cast<uintmax_t>(limits.max_file_bytes())) {
    if (error)
      *error = fmt::format(
          "file of {} bytes, larger than any image within the pixel limit of {} "
          "(--max-image-pixels raises it)",
          bytes, limits.max_pixels);
    return {};
  }
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  DecodedImage image;
  std::string reason;
  if (in.bad()) reason = "cannot be read";
  else if (decode_image(data.data(), data.size(), limits, image, reason)) return image;
  if (error) *error = reason;
  return {};
}

inline Image read_image(const std::filesystem::path& path, std::string* error) {
  DecodedImage decoded = read_decoded_image(path, error);
  if (decoded.pixels.empty()) return {};
  decoded = to_channels(std::move(decoded), 3);
  Image image;
  image.width = decoded.width;
  image.height = decoded.height;
  image.pixels = std::move(decoded.pixels);
  return image;
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

inline void write_png(const std::filesystem::path& path, int width, int height, int channels,
                      const std::vector<uint8_t>& pixels) {
  if ((channels != 1 && channels != 3) || width <= 0 || height <= 0 ||
      pixels.size() != static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels))
    throw std::runtime_error(
        fmt::format("cannot write PNG {}: {} x {} pixels of {} channels (1 or 3) and {} bytes do "
                    "not match",
                    path.string(), width, height, channels, pixels.size()));
  detail::PngLayout layout;
  layout.color_type = channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
  std::vector<uint8_t> file;
  std::string reason;
  if (!encode_png(pixels.data(), width, height, static_cast<size_t>(width) * channels, layout, file, reason))
    throw std::runtime_error(fmt::format("cannot write PNG {}: {}", path.string(), reason));
  // Written to PATH.tmp and renamed, so a killed process never leaves a half-written PNG under PATH.
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw std::runtime_error(fmt::format("cannot write PNG {}: writing {} failed", path.string(), tmp));
    }
  }
  std::filesystem::rename(tmp, path);
}

inline void write_png(const std::filesystem::path& path, const Image& image) {
  write_png(path, image.width, image.height, 3, image.pixels);
}

inline Image resize(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  stbir_resize_uint8_srgb(image.pixels.data(), image.width, image.height, 0, out.pixels.data(), width, height, 0, 3,
                          STBIR_ALPHA_CHANNEL_NONE, 0);
  return out;
}

}  // namespace trainer

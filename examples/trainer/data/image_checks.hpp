// Checks of an image file's bytes and header before a decoder allocates anything
// (image_decode.hpp runs them): which format the bytes are (by content, never by the file's name),
// the limits of DecodeLimits, and the shortest file that can hold the pixels a header announces.
// Pure byte walks and arithmetic: no decoder, no allocation.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace trainer {

/// 64 megapixels (8192 x 8192): 192 MB as 8-bit RGB.
inline constexpr int64_t kDefaultMaxImagePixels = int64_t{1} << 26;

struct DecodeLimits {
  /// Images with more pixels (width * height, from the header) are refused before decoding.
  int64_t max_pixels = kDefaultMaxImagePixels;
  /// Largest file read at all: no image within max_pixels needs more than 4 bytes a pixel plus
  /// metadata, so anything larger is refused before it is read into memory.
  int64_t max_file_bytes() const { return max_pixels * 4 + (int64_t{16} << 20); }
};

/// The formats the trainer reads.
enum class ImageFormat { kJpeg, kPng, kUnsupported };

/// What `data` holds, from its first bytes: a PNG signature, or a JPEG's SOI marker followed by
/// another marker.
inline ImageFormat sniff_format(const uint8_t* data, size_t size) {
  if (size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return ImageFormat::kJpeg;
  return ImageFormat::kUnsupported;
}

/// The reason a file that is neither JPEG nor PNG is refused, naming the format where its first
/// bytes tell it (other image formats are not decoded at all: TGA has no signature, so it is
/// recognised by its name only, in the caller's warning).
inline std::string unsupported_format_error(const uint8_t* data, size_t size) {
  const auto starts = [&](std::string_view magic, size_t at = 0) {
    return size >= at + magic.size() && std::memcmp(data + at, magic.data(), magic.size()) == 0;
  };
  using namespace std::string_view_literals;  // magic numbers with NUL bytes in them
  const char* name = starts("BM")                                                      ? "BMP"
                     : starts("GIF87a") || starts("GIF89a")                            ? "GIF"
                     : starts("RIFF") && starts("WEBP", 8)                             ? "WebP"
                     : starts("II*\0"sv) || starts("MM\0*"sv)                          ? "TIFF"
                     : starts("8BPS")                                                  ? "PSD"
                     : starts("#?RADIANCE") || starts("#?RGBE")                        ? "HDR"
                     : starts("\0\0\0\x0cjP  "sv) || starts("\xff\x4f\xff\x51")        ? "JPEG 2000"
                     : starts("ftypavif", 4) || starts("ftypheic", 4)                  ? "AVIF/HEIF"
                     : size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7' ? "PNM"
                                                                                       : nullptr;
  if (size >= 2 && data[0] == 0xff && data[1] == 0xd8)
    return "not a JPEG: a JPEG start marker (ff d8) without a marker after it";
  if (name != nullptr) return fmt::format("unsupported image format {}: the trainer reads JPEG and PNG only", name);
  std::string first;
  for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) first += fmt::format("{}{:02x}", i ? " " : "", data[i]);
  return fmt::format(
      "not a JPEG or PNG file (it starts with {}; expected ff d8 ff or 89 50 4e 47): the trainer reads "
      "JPEG and PNG only",
      first);
}

/// "" when `width` x `height` (from a header; each below 2^32) is within `limits`, else the reason.
inline std::string check_dimensions(int64_t width, int64_t height, const DecodeLimits& limits) {
  if (width <= 0 || height <= 0)
    return fmt::format("image header declares {} x {} pixels, expected at least 1 x 1", width, height);
  // Sides below 2^32 in both formats: the product fits in 64 bits.
  const uint64_t n = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  if (n > static_cast<uint64_t>(limits.max_pixels))
    return fmt::format(
        "image header declares {} x {} = {} pixels, more than the limit of {} (--max-image-pixels "
        "raises it)",
        width, height, n, limits.max_pixels);
  return {};
}

/// The fewest bytes any file of this format can hold `pixels` pixels in, from the format's best
/// possible compression: PNG's deflate at most 1032:1 of at least 1 bit a pixel; a JPEG at least one
/// bit per 8x8 block (its DC code). A shorter file is truncated or a decompression bomb, refused
/// before the pixels are allocated.
inline int64_t smallest_file_for(ImageFormat format, int64_t pixels) {
  return format == ImageFormat::kPng ? pixels / 8256 : pixels / 512;
}

}  // namespace trainer

// The trainer's image decoder: JPEG through libjpeg-turbo (TurboJPEG), PNG through libpng, both
// from Debian and fuzzed upstream by OSS-Fuzz; every other format is refused with a message naming
// the two supported ones. Every image the trainer reads (training folders, `translate`, `explain`
// and `evaluate` inputs) comes from outside and goes through `decode_image`, which:
//
//  1. tells the format from the first bytes (image_checks.hpp), not from the file's name;
//  2. reads the header alone and checks it before anything of the image is allocated: width and
//     height at least 1, width * height at most `DecodeLimits::max_pixels` (default 64 megapixels,
//     8192 x 8192; the trainer's `--max-image-pixels` raises it), libpng's own per-side limit set to
//     the same number, and a file at least as long as the format's best compression allows for
//     those pixels (smallest_file_for: shorter is truncated or a decompression bomb);
//  3. allocates exactly width * height * channels bytes and decodes into them: 8 bits a channel,
//     1 channel (gray) or 3 (RGB), the file's own (see `decode_image`); `to_channels` converts;
//  4. refuses, with the library's reason, what the library reports: a truncated file, a corrupt
//     chunk (CRC) or entropy-coded segment, any libjpeg-turbo warning, a progressive JPEG with too
//     many scans, a CMYK/YCCK JPEG.
//
// libpng's chunk buffers are capped (1 MB, 100 chunks) and compressed text and ICC profiles are
// skipped unread (png_codec.hpp). No LibTorch here, so the fuzz target (fuzz/trainer_image.cpp)
// builds in seconds.
#pragma once

#include "trainer/data/image_checks.hpp"
#include "trainer/data/jpeg_decode.hpp"
#include "trainer/data/png_codec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace trainer {

/// 8-bit pixels, row-major, `channels` interleaved (1: gray, 3: RGB).
struct DecodedImage {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // width * height * channels
};

/// The limits read_image applies (main() sets max_pixels from --max-image-pixels).
inline DecodeLimits& decode_limits() {
  static DecodeLimits limits;
  return limits;
}

namespace detail {

inline bool fail(std::string& error, std::string reason) {
  error = std::move(reason);
  return false;
}

/// Header checks shared by both formats (steps 2 and 3 of the file comment); sizes `out`.
inline bool check_and_allocate(ImageFormat format, size_t file_size, int64_t width, int64_t height, int channels,
                               const DecodeLimits& limits, DecodedImage& out, std::string& error) {
  if (auto reason = check_dimensions(width, height, limits); !reason.empty()) return fail(error, reason);
  const int64_t needed = smallest_file_for(format, width * height);
  if (static_cast<int64_t>(file_size) < needed)
    return fail(error, fmt::format("file of {} bytes is too short for the {} x {} pixels its header declares (a {} "
                                   "needs at least {} bytes for them): truncated, or a decompression bomb",
                                   file_size, width, height, format == ImageFormat::kPng ? "PNG" : "JPEG", needed));
  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  out.channels = channels;
  out.pixels.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels), 0);
  return true;
}

inline bool decode_png(const uint8_t* data, size_t size, const DecodeLimits& limits, DecodedImage& out,
                       std::string& error) {
  PngHandle handle(false);
  if (!handle.ok()) return fail(error, "corrupt PNG: libpng could not start (out of memory)");
  PngState* s = handle.state();
  s->in = data;
  s->in_size = size;
  // The size in IHDR (always the first chunk) against the limits before libpng reads anything; libpng
  // itself refuses a side over the limit too (png_set_user_limits), and a file not starting with IHDR.
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    const auto be32 = [&](size_t at) {
      return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) | (uint32_t{data[at + 2]} << 8) | data[at + 3];
    };
    if (auto reason = check_dimensions(be32(16), be32(20), limits); !reason.empty()) return fail(error, reason);
  }
  PngHeader h;
  const auto max_side = static_cast<uint32_t>(std::min<int64_t>(limits.max_pixels, 0x7fffffff));
  if (!png_header_phase(s, max_side, &h)) return fail(error, "corrupt PNG: " + png_reason(*s));
  if (!check_and_allocate(ImageFormat::kPng, size, h.width, h.height, h.channels, limits, out, error)) return false;
  if (h.row_bytes != static_cast<size_t>(h.width) * static_cast<size_t>(h.channels))
    return fail(error,
                fmt::format("corrupt PNG: rows of {} bytes, expected {} x {}", h.row_bytes, h.width, h.channels));
  std::vector<png_bytep> rows(h.height);
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = out.pixels.data() + y * h.row_bytes;
  if (!png_pixels_phase(s, rows.data())) {
    out = DecodedImage{};
    return fail(error, "corrupt PNG: " + png_reason(*s));
  }
  return true;
}

inline bool decode_jpeg(const uint8_t* data, size_t size, const DecodeLimits& limits, DecodedImage& out,
                        std::string& error) {
  TurboJpegDecoder decoder;
  if (!decoder.ok()) return fail(error, "corrupt JPEG: libjpeg-turbo could not start (out of memory)");
  TurboJpegDecoder::Header h;
  if (!decoder.header(data, size, h)) return fail(error, "corrupt JPEG header: " + decoder.error());
  if (h.width == 0 && h.height == 0)  // libjpeg-turbo takes a file without a frame header for tables only
    return fail(error, "corrupt JPEG header: the file ends before a frame header (SOF marker): no image in it");
  if (h.colorspace == TJCS_CMYK || h.colorspace == TJCS_YCCK)
    return fail(error,
                fmt::format("unsupported JPEG colour space {}: the trainer reads gray, RGB and YCbCr JPEGs (convert "
                            "it to RGB first, e.g. `convert in.jpg -colorspace sRGB out.jpg`)",
                            h.colorspace == TJCS_CMYK ? "CMYK" : "YCCK"));
  const int channels = h.colorspace == TJCS_GRAY ? 1 : 3;
  if (!check_and_allocate(ImageFormat::kJpeg, size, h.width, h.height, channels, limits, out, error)) return false;
  if (!decoder.decode(data, size, h, channels == 1 ? TJPF_GRAY : TJPF_RGB, out.pixels.data())) {
    out = DecodedImage{};
    return fail(error, "corrupt JPEG: " + decoder.error());
  }
  return true;
}

}  // namespace detail

/// Decodes an in-memory JPEG or PNG file to 8-bit pixels with the file's own channels:
///  - 1 (gray): gray JPEGs; PNGs of colour type gray or gray + alpha;
///  - 3 (RGB): RGB/YCbCr JPEGs; PNGs of colour type RGB, RGB + alpha or palette.
/// PNG: bit depths below 8 are expanded, 16-bit samples scaled to round(v * 255 / 65535), an alpha
/// channel or tRNS transparency is dropped (the colours as stored, not blended onto a background:
/// what PIL's convert("RGB"), which CUT's data loader calls, does), gAMA/iCCP colour management is
/// not applied. CMYK/YCCK JPEGs are refused.
/// Returns false and sets `error` (what is wrong, with the expected and the actual value) without
/// allocating more than the header's checks allowed; `out` is then empty.
inline bool decode_image(const uint8_t* data, size_t size, const DecodeLimits& limits, DecodedImage& out,
                         std::string& error) {
  out = DecodedImage{};
  if (size == 0) return detail::fail(error, "empty file (0 bytes)");
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(limits.max_file_bytes()))
    return detail::fail(error, fmt::format("file of {} bytes, larger than any image within the pixel limit of {} "
                                           "(--max-image-pixels raises it)",
                                           size, limits.max_pixels));
  switch (sniff_format(data, size)) {
    case ImageFormat::kPng:
      return detail::decode_png(data, size, limits, out, error);
    case ImageFormat::kJpeg:
      return detail::decode_jpeg(data, size, limits, out, error);
    case ImageFormat::kUnsupported:
      break;
  }
  return detail::fail(error, unsupported_format_error(data, size));
}

/// `pixels` (count pixels of `from` channels) with `to` channels: the same bytes when from == to;
/// RGB -> gray with ITU-R BT.601 luma weights in PIL's fixed point,
/// (19595 R + 38470 G + 7471 B + 32768) >> 16, what PIL's convert("L") computes (CUT's data loader
/// calls it for --input_nc 1); gray -> RGB by repeating the value. `from` and `to` are 1 or 3.
inline std::vector<uint8_t> to_channels(const std::vector<uint8_t>& pixels, int from, int to) {
  if ((from != 1 && from != 3) || (to != 1 && to != 3))
    throw std::invalid_argument(fmt::format("to_channels: expected 1 or 3 channels, got {} -> {}", from, to));
  if (from == to) return pixels;
  const size_t n = pixels.size() / static_cast<size_t>(from);
  std::vector<uint8_t> out(n * static_cast<size_t>(to));
  if (from == 3) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = pixels.data() + 3 * i;
      out[i] = static_cast<uint8_t>((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16);
    }
  } else {
    for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = pixels[i];
  }
  return out;
}

/// `image` converted to `channels` (1 or 3) with to_channels.
inline DecodedImage to_channels(DecodedImage image, int channels) {
  if (image.channels != channels) {
    image.pixels = to_channels(image.pixels, image.channels, channels);
    image.channels = channels;
  }
  return image;
}

/// decode_image, then to RGB (`width` * `height` * 3 bytes, row-major).
inline bool decode_rgb(const uint8_t* data, size_t size, const DecodeLimits& limits, int& width, int& height,
                       std::vector<uint8_t>& pixels, std::string& error) {
  DecodedImage image;
  width = height = 0;
  pixels.clear();
  if (!decode_image(data, size, limits, image, error)) return false;
  image = to_channels(std::move(image), 3);
  width = image.width;
  height = image.height;
  pixels = std::move(image.pixels);
  return true;
}

}  // namespace trainer

// The trainer's image decoder: stb_image behind checks that make hostile files harmless.
//
// Every image the trainer reads (training folders, `translate` inputs) comes from outside and goes
// through `decode_rgb`, which, before stb_image allocates or parses anything beyond the header:
//
//  1. accepts only JPEG, PNG, BMP and TGA: stb's other decoders (GIF, PSD, PIC, PNM, HDR) are
//     compiled out (STBI_ONLY_*), because stb picks the decoder from the content, not the name;
//  2. walks a JPEG's marker segments exactly as stb 2.27 does and rejects a Huffman table (DHT)
//     whose 16 code-length counts add up to more than 256 symbols. stb 2.27 (Debian's libstb)
//     writes such tables past `stbi_uc size[257]` in `stbi__build_huffman` and past `values[256]`
//     (upstream fixed it later with the same check). The walk follows stb's own rules (fill bytes,
//     junk before the frame header, stuffed bytes and restart markers in entropy-coded data), so
//     every DHT that stb would parse is checked, and valid files are never refused
//     (image_checks.hpp). A PNG whose first IDAT chunk is empty is refused too (stb 2.27 then
//     memcpy()s to NULL). Why validation rather than another decoder: the
//     project's dependencies are Debian packages, so a patched copy of stb is not an option, and
//     libjpeg-turbo/libpng would add two libraries, a second code path per format and still leave
//     BMP and TGA to stb; one check in front of the one decoder keeps every format on one path;
//  3. bounds what stb may allocate while decoding to 32 bytes a pixel plus 16 MB (its zlib would
//     otherwise inflate a truncated PNG stream without end);
//  4. refuses files too short for the pixels they announce (smallest_file_for);
//  5. reads the dimensions from the header (`stbi_info_from_memory`) and refuses images of more
//     than `DecodeLimits::max_pixels` pixels (default 64 megapixels, 8192 x 8192; the trainer's
//     `--max-image-pixels` raises it): a few bytes of TGA or PNG header can otherwise announce
//     gigabytes (decompression bombs).
//
// No LibTorch here, so the fuzz target (fuzz/trainer_image.cpp) builds in seconds.
// Exactly one translation unit defines PATCHGCL_TRAINER_STB_IMPLEMENTATION before including this.
#pragma once

#include "trainer/data/image_checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace trainer::detail {
/// Bytes stb_image may hold at once while decoding on this thread (0: no limit). decode_rgb sets it
/// from the header's dimensions: stb 2.27's zlib reads zeros past the end of a PNG's data and can
/// expand a 120-byte file without bound (found by the fuzzer: 500 MB and still growing after 10 s);
/// with the budget its realloc fails and stb reports "outofmem". New blocks are zeroed (stb_malloc).
inline thread_local size_t stb_budget = 0;
inline thread_local size_t stb_in_use = 0;
constexpr size_t kStbHeader = 16;  // keeps stb's blocks 16-byte aligned
inline void* stb_malloc(size_t size) {
  if (stb_budget != 0 && (size > stb_budget || stb_in_use > stb_budget - size)) return nullptr;
  // Zeroed: stb 2.27 decodes a JPEG scan with a Huffman table the file never defined from whatever
  // its (not cleared) decoder state holds. With memory reused from an earlier image that made it
  // index outside the table (found by the fuzzer, an assertion in stbi__jpeg_huff_decode); an
  // all-zero table decodes to symbol 0 instead.
  auto* block = static_cast<unsigned char*>(std::calloc(1, size + kStbHeader));
  if (block == nullptr) return nullptr;
  std::memcpy(block, &size, sizeof(size));
  stb_in_use += size;
  return block + kStbHeader;
}
inline void stb_free(void* p) {
  if (p == nullptr) return;
  auto* block = static_cast<unsigned char*>(p) - kStbHeader;
  size_t size = 0;
  std::memcpy(&size, block, sizeof(size));
  stb_in_use -= std::min(size, stb_in_use);
  std::free(block);
}
inline void* stb_realloc(void* p, size_t size) {
  if (p == nullptr) return stb_malloc(size);
  auto* block = static_cast<unsigned char*>(p) - kStbHeader;
  size_t old = 0;
  std::memcpy(&old, block, sizeof(old));
  const size_t others = stb_in_use - std::min(old, stb_in_use);
  if (stb_budget != 0 && (size > stb_budget || others > stb_budget - size)) return nullptr;
  auto* grown = static_cast<unsigned char*>(std::realloc(block, size + kStbHeader));
  if (grown == nullptr) return nullptr;
  std::memcpy(grown, &size, sizeof(size));
  stb_in_use = others + size;
  return grown + kStbHeader;
}
}  // namespace trainer::detail

#ifndef STBI_INCLUDE_STB_IMAGE_H
#ifdef PATCHGCL_TRAINER_STB_IMPLEMENTATION
#define STBI_MALLOC(size) ::trainer::detail::stb_malloc(size)
#define STBI_REALLOC(p, size) ::trainer::detail::stb_realloc(p, size)
#define STBI_FREE(p) ::trainer::detail::stb_free(p)
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#define STB_IMAGE_IMPLEMENTATION
#endif
#include <stb/stb_image.h>
#endif

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

/// The limits read_image applies (main() sets max_pixels from --max-image-pixels).
inline DecodeLimits& decode_limits() {
  static DecodeLimits limits;
  return limits;
}

/// stb's reason for the last failure; some of its PNG paths set an empty one.
inline std::string stb_failure(const char* fallback) {
  const char* reason = stbi_failure_reason();
  return reason != nullptr && reason[0] != '\0' ? std::string(reason) : std::string(fallback);
}

/// Decodes an in-memory JPEG/PNG/BMP/TGA file to 8-bit RGB (`width` * `height` * 3 bytes, row-major).
/// Returns false and sets `error` (the file is unreadable, a corrupt JPEG Huffman table, or more
/// pixels than `limits.max_pixels`) without allocating the image.
inline bool decode_rgb(const uint8_t* data, size_t size, const DecodeLimits& limits, int& width, int& height,
                       std::vector<uint8_t>& pixels, std::string& error) {
  width = height = 0;
  pixels.clear();
  if (size == 0) {
    error = "empty file (0 bytes)";
    return false;
  }
  if (size > static_cast<size_t>(INT32_MAX)) {  // stb takes an int length
    error = fmt::format("file of {} bytes is larger than any image stb_image can read", size);
    return false;
  }
  error = check_jpeg_huffman_tables(data, size);
  if (error.empty()) error = check_png_chunks(data, size);
  if (!error.empty()) return false;
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels)) {
    error = stb_failure("unknown image type");
    return false;
  }
  if (w <= 0 || h <= 0) {
    error = fmt::format("image header declares {} x {} pixels", w, h);
    return false;
  }
  const int64_t n = int64_t{w} * h;
  if (n > limits.max_pixels) {
    error = fmt::format("image header declares {} x {} = {} pixels, more than the limit of {} (--max-image-pixels "
                        "raises it)", w, h, n, limits.max_pixels);
    return false;
  }
  // Every decoder's working memory is bounded by the pixels: at most 4 channels of 16 bits, a few
  // copies (zlib output, unfiltered rows, converted result; JPEG coefficients), plus tables.
  struct Budget {
    explicit Budget(size_t bytes) { detail::stb_budget = bytes, detail::stb_in_use = 0; }
    ~Budget() { detail::stb_budget = 0; }
  } budget(static_cast<size_t>(n) * 32 + (size_t{16} << 20));
  if (const int64_t needed = smallest_file_for(data, size, n); static_cast<int64_t>(size) < needed) {
    error = fmt::format("file of {} bytes is too short for the {} x {} pixels its header declares (this format needs "
                        "at least {} bytes for them): truncated, or a decompression bomb", size, w, h, needed);
    return false;
  }
  uint8_t* decoded = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &channels, 3);
  if (decoded == nullptr) {
    error = stb_failure("corrupt or truncated image data");
    return false;
  }
  if (int64_t{w} * h > limits.max_pixels) {  // the header said otherwise: never trust it twice
    stbi_image_free(decoded);
    error = fmt::format("decoded image is {} x {}, larger than its header declared", w, h);
    return false;
  }
  width = w;
  height = h;
  pixels.assign(decoded, decoded + static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  stbi_image_free(decoded);
  return true;
}

}  // namespace trainer

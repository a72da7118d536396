// Checks of an image file's bytes that stb_image 2.27 (Debian's libstb) needs before it parses
// them (image_decode.hpp runs them in decode_rgb): each guards against a defect of stb found by the
// fuzzer (fuzz/trainer_image.cpp) or by the hostile-file tests. Pure byte walks: no stb, no allocation.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace trainer {

namespace detail {

/// A walk over a JPEG's markers as stb_image 2.27 reads them (stbi__get8, stbi__get_marker,
/// stbi__process_marker), stopping where stb would stop with an error.
class JpegMarkerWalk {
 public:
  enum class Step { kGo, kStop, kBad };
  static constexpr int kNone = 0xff;  // STBI__MARKER_none

  JpegMarkerWalk(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool at_eof() const { return pos_ >= size_; }
  int get8() { return pos_ < size_ ? data_[pos_++] : 0; }  // stbi__get8 returns 0 at EOF
  int get16() {
    int hi = get8();
    return (hi << 8) | get8();
  }
  void skip(long n) { pos_ = n < 0 ? size_ : std::min(size_, pos_ + static_cast<size_t>(n)); }
  int get_marker() {  // stbi__get_marker
    if (cached_ != kNone) {
      int m = cached_;
      cached_ = kNone;
      return m;
    }
    int x = get8();
    if (x != 0xff) return kNone;
    while (x == 0xff) x = get8();
    return x;
  }
  /// Why the walk stopped at a table stb would overrun (Step::kBad).
  const std::string& reason() const { return reason_; }

  /// stbi__process_marker for the markers that can precede or follow a scan.
  Step process(int m) {
    if (m == 0xdd) {  // DRI
      if (get16() != 4) return Step::kStop;
      get16();
      return Step::kGo;
    }
    if (m == 0xdb) return quantization_tables();
    if (m == 0xc4) return huffman_tables();
    if ((m >= 0xe0 && m <= 0xef) || m == 0xfe) {  // APPn, COM
      long L = get16();
      if (L < 2) return Step::kStop;
      skip(L - 2);
      return Step::kGo;
    }
    return Step::kStop;  // stb: "unknown marker" (also STBI__MARKER_none: "expected marker")
  }

  /// SOS, then the entropy-coded data up to the next marker (stuffed 00 and RSTn belong to it);
  /// false where stb would stop.
  bool scan() {
    const long Ls = get16();
    if (Ls < 2) return false;
    skip(Ls - 2);
    for (;;) {
      if (at_eof()) return false;
      if (get8() != 0xff) continue;
      int y = get8();
      while (y == 0xff && !at_eof()) y = get8();
      if (y == 0 || (y >= 0xd0 && y <= 0xd7)) continue;
      cached_ = y;
      return true;
    }
  }

 private:
  Step quantization_tables() {  // DQT
    long L = get16() - 2;
    while (L > 0) {
      int q = get8(), p = q >> 4, t = q & 15;
      if ((p != 0 && p != 1) || t > 3) return Step::kStop;
      skip(p ? 128 : 64);
      L -= p ? 129 : 65;
    }
    return L == 0 ? Step::kGo : Step::kStop;
  }
  Step huffman_tables() {  // DHT
    const size_t segment = pos_ - 2;
    long L = get16() - 2;
    while (L > 0) {
      int q = get8(), tc = q >> 4, th = q & 15;
      if (tc > 1 || th > 3) return Step::kStop;
      int n = 0;
      for (int i = 0; i < 16; ++i) n += get8();
      if (n > 256) {
        reason_ = fmt::format("corrupt JPEG: Huffman table (DHT segment at byte {}) declares {} symbols, at most 256 "
                              "exist", segment, n);
        return Step::kBad;
      }
      skip(n);
      L -= 17 + n;
    }
    return L == 0 ? Step::kGo : Step::kStop;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  int cached_ = kNone;
  std::string reason_;
};

}  // namespace detail

/// Checks every Huffman table (DHT segment) that stb_image 2.27 would parse in `data`; returns an
/// empty string when they are all safe to hand to stb (or the data is not a JPEG), else the reason.
/// Mirrors stbi__decode_jpeg_header / stbi__decode_jpeg_image / stbi__process_marker: where stb
/// would stop with an error, the walk stops too and accepts (stb then reports its own error).
inline std::string check_jpeg_huffman_tables(const uint8_t* data, size_t size) {
  using Walk = detail::JpegMarkerWalk;
  Walk walk(data, size);
  const auto verdict = [&](Walk::Step s) { return s == Walk::Step::kBad ? walk.reason() : std::string(); };
  const auto is_sof = [](int m) { return m == 0xc0 || m == 0xc1 || m == 0xc2; };

  if (walk.get_marker() != 0xd8) return {};  // no SOI: stb does not treat it as a JPEG
  // Header: markers up to the frame header; stb skips junk bytes between them.
  int m = walk.get_marker();
  while (!is_sof(m)) {
    const auto s = walk.process(m);
    if (s != Walk::Step::kGo) return verdict(s);
    m = walk.get_marker();
    while (m == Walk::kNone) {
      if (walk.at_eof()) return {};
      m = walk.get_marker();
    }
  }
  const long Lf = walk.get16();
  if (Lf < 11) return {};
  walk.skip(Lf - 2);
  // Image: scans and the markers between them, up to EOI.
  for (m = walk.get_marker(); m != 0xd9; m = walk.get_marker()) {
    if (m == 0xda) {
      if (!walk.scan()) return {};
    } else if (m == 0xdc) {  // DNL
      if (walk.get16() != 4) return {};
      walk.get16();
    } else {
      const auto s = walk.process(m);
      if (s != Walk::Step::kGo) return verdict(s);
    }
  }
  return {};
}

/// "" unless `data` is a PNG whose first IDAT chunk is empty: stb 2.27 then copies 0 bytes to a null
/// buffer (undefined behaviour, UBSan stops the process; found by the fuzzer). A zero-length IDAT
/// is legal but never written by an encoder in practice, so such files are refused.
inline std::string check_png_chunks(const uint8_t* data, size_t size) {
  if (size < 8 || std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0) return {};
  size_t pos = 8;
  while (pos + 8 <= size) {
    const uint32_t length = (uint32_t{data[pos]} << 24) | (uint32_t{data[pos + 1]} << 16) |
                            (uint32_t{data[pos + 2]} << 8) | uint32_t{data[pos + 3]};
    if (std::memcmp(data + pos + 4, "IDAT", 4) == 0)
      return length == 0 ? fmt::format("corrupt PNG: its first IDAT chunk (at byte {}) is empty", pos) : "";
    if (length > size) return {};  // stb reports the truncation itself
    pos += 12 + static_cast<size_t>(length);
  }
  return {};
}

/// The fewest bytes any file of this format can hold `pixels` pixels in, from the format's best
/// possible compression: PNG's deflate at most 1032:1 of at least 1 bit a pixel; a JPEG at least one
/// bit per 8x8 block (its DC code); BMP (stb reads no RLE BMP) at least 1 bit a pixel; TGA's RLE
/// at most 128 pixels per packet of at least 2 bytes. stb reads data past the end as zeros, so a
/// shorter file would be decoded from nothing (found by the fuzzer: a 219-byte TGA announcing
/// 18172 x 215 pixels, 13 s under the sanitizers).
inline int64_t smallest_file_for(const uint8_t* data, size_t size, int64_t pixels) {
  if (size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) return pixels / 8256;
  if (size >= 2 && data[0] == 0xff && data[1] == 0xd8) return pixels / 512;
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return pixels / 8;
  return pixels / 64;  // TGA, the only other format read
}

}  // namespace trainer

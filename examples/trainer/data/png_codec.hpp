// PNG through libpng (Debian's libpng-dev, 1.6): decoding a file in memory to 8-bit gray or RGB,
// and encoding 8-bit gray or RGB rows. Used by image_decode.hpp and image_io.hpp; no LibTorch.
//
// libpng reports errors by longjmp. The functions that call into libpng while its jump buffer is
// set (png_*_phase below) are C-style: plain structs and raw pointers, no C++ object with a
// destructor alive in their frames, so a longjmp out of libpng skips nothing that needs unwinding.
// The error handler records libpng's message in the struct and jumps; nothing is printed.
#pragma once

#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace trainer::detail {

/// State shared with libpng's callbacks: trivially destructible, so it may live across setjmp.
struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* in = nullptr;  // reading: the file
  size_t in_size = 0;
  size_t in_pos = 0;
  std::vector<uint8_t>* out = nullptr;  // writing: appended to by png_append (outside any jump)
  bool out_of_memory = false;
  char message[256] = {};
  char warning[256] = {};  // the last warning (libpng explains an invalid IHDR in warnings)
};

inline void png_record_error(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", message != nullptr ? message : "unknown libpng error");
  png_longjmp(png, 1);
}
inline void png_record_warning(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->warning, sizeof s->warning, "%s", message != nullptr ? message : "");
}
/// libpng's reason for a failure, with the warning that explains "Invalid IHDR data".
inline std::string png_reason(const PngState& s) {
  std::string reason = s.message;
  if (s.warning[0] != '\0' && reason.find("IHDR") != std::string::npos) reason += std::string(" (") + s.warning + ")";
  return reason;
}

inline void png_read_memory(png_structp png, png_bytep dest, size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > s->in_size - s->in_pos) {
    char message[160];
    std::snprintf(message, sizeof message, "truncated: the file ends at byte %zu, inside a chunk that needs %zu more",
                  s->in_size, n - (s->in_size - s->in_pos));
    png_error(png, message);  // copied by png_record_error before it jumps
  }
  std::memcpy(dest, s->in + s->in_pos, n);
  s->in_pos += n;
}

inline void png_append(png_structp png, png_bytep data, size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    s->out->insert(s->out->end(), data, data + n);
  } catch (...) {  // no exception may cross libpng's C frames
    ok = false;
  }
  if (!ok) {
    s->out_of_memory = true;
    png_error(png, "out of memory while encoding");
  }
}
inline void png_flush_nothing(png_structp) {}

/// The header as it will be decoded: 8 bits per channel, 1 (gray) or 3 (RGB) channels.
struct PngHeader {
  uint32_t width = 0;
  uint32_t height = 0;
  int channels = 0;
  size_t row_bytes = 0;
  int source_color_type = 0;
  int source_bit_depth = 0;
};

/// Ancillary chunks the trainer has no use for, skipped unread (zTXt/iTXt/iCCP are compressed:
/// never inflated). Colour management is not applied: pixels are taken as stored, as PIL does.
inline constexpr png_byte kPngIgnoredChunks[] =
    "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0"
    "sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt\0";

/// Reads the header and sets the transforms to 8-bit gray or RGB. C-style (see the file comment).
inline bool png_header_phase(PngState* s, uint32_t max_side, PngHeader* h) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  // Every chunk libpng buffers (PLTE, tRNS, unknown ones) at most 1 MB, at most 100 of them, and
  // no side over the pixel limit: libpng refuses larger headers itself, before allocating.
  png_set_user_limits(s->png, max_side, max_side);
  png_set_chunk_malloc_max(s->png, size_t{1} << 20);
  png_set_chunk_cache_max(s->png, 100);
  png_set_keep_unknown_chunks(s->png, PNG_HANDLE_CHUNK_NEVER, nullptr, 0);
  png_set_keep_unknown_chunks(s->png, PNG_HANDLE_CHUNK_NEVER, kPngIgnoredChunks,
                              static_cast<int>(sizeof kPngIgnoredChunks / 5));
  png_set_read_fn(s->png, s, png_read_memory);
  png_read_info(s->png, s->info);
  h->source_color_type = png_get_color_type(s->png, s->info);
  h->source_bit_depth = png_get_bit_depth(s->png, s->info);
  if (h->source_color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
  if (h->source_color_type == PNG_COLOR_TYPE_GRAY && h->source_bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
  if (h->source_bit_depth == 16) png_set_scale_16(s->png);  // round(v * 255 / 65535)
  // Alpha (an alpha channel, or tRNS transparency) is dropped: colours as stored, as PIL's
  // convert("RGB") / convert("L") do, which CUT's data loader calls.
  png_set_strip_alpha(s->png);
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  h->width = png_get_image_width(s->png, s->info);
  h->height = png_get_image_height(s->png, s->info);
  h->channels = png_get_channels(s->png, s->info);
  h->row_bytes = png_get_rowbytes(s->png, s->info);
  if (png_get_bit_depth(s->png, s->info) != 8 || (h->channels != 1 && h->channels != 3))
    png_error(s->png, "unexpected pixel layout after conversion to 8-bit gray or RGB");
  return true;
}

/// Decodes every row (all passes of an interlaced file) into `rows`. C-style.
inline bool png_pixels_phase(PngState* s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_image(s->png, rows);
  return true;
}

/// Writes a whole image. C-style.
inline bool png_write_phase(PngState* s, uint32_t width, uint32_t height, int color_type, int bit_depth, int interlace,
                            const png_color* palette, int palette_size, const png_byte* trans, int trans_size,
                            png_bytepp rows) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_write_fn(s->png, s, png_append, png_flush_nothing);
  png_set_IHDR(s->png, s->info, width, height, bit_depth, color_type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(s->png);
  if (palette_size > 0) png_set_PLTE(s->png, s->info, palette, palette_size);
  if (trans_size > 0) png_set_tRNS(s->png, s->info, trans, trans_size, nullptr);
  png_write_info(s->png, s->info);
  png_write_image(s->png, rows);
  png_write_end(s->png, nullptr);
  return true;
}

/// Owns libpng's read or write structures.
class PngHandle {
 public:
  explicit PngHandle(bool write) : write_(write) {
    s_.png = write ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &s_, png_record_error, png_record_warning)
                   : png_create_read_struct(PNG_LIBPNG_VER_STRING, &s_, png_record_error, png_record_warning);
    if (s_.png != nullptr) s_.info = png_create_info_struct(s_.png);
  }
  ~PngHandle() {
    if (write_) png_destroy_write_struct(&s_.png, &s_.info);
    else png_destroy_read_struct(&s_.png, &s_.info, nullptr);
  }
  PngHandle(const PngHandle&) = delete;
  PngHandle& operator=(const PngHandle&) = delete;
  bool ok() const { return s_.png != nullptr && s_.info != nullptr; }
  PngState* state() { return &s_; }

 private:
  PngState s_;
  bool write_;
};

/// How the rows given to encode_png are laid out: 8-bit gray or RGB by default; palette, alpha and
/// 16-bit layouts (big-endian samples, as PNG stores them) for tests and tools.
struct PngLayout {
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  std::vector<png_color> palette;
  std::vector<png_byte> transparency;  // tRNS for palette entries
  bool interlaced = false;             // Adam7
};

}  // namespace trainer::detail

namespace trainer {

/// Bytes of a PNG file holding `height` rows of `row_bytes` bytes each, from `pixels`.
/// Returns false and sets `error` (libpng's reason) on failure.
inline bool encode_png(const uint8_t* pixels, int width, int height, size_t row_bytes, const detail::PngLayout& layout,
                       std::vector<uint8_t>& file, std::string& error) {
  file.clear();
  if (width <= 0 || height <= 0) {
    error = fmt::format("cannot encode a PNG of {} x {} pixels", width, height);
    return false;
  }
  detail::PngHandle handle(true);
  if (!handle.ok()) {
    error = "libpng could not start (out of memory)";
    return false;
  }
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = const_cast<png_bytep>(pixels + y * row_bytes);
  auto* s = handle.state();
  s->out = &file;
  if (!detail::png_write_phase(s, static_cast<uint32_t>(width), static_cast<uint32_t>(height), layout.color_type,
                               layout.bit_depth, layout.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                               layout.palette.data(), static_cast<int>(layout.palette.size()),
                               layout.transparency.data(), static_cast<int>(layout.transparency.size()), rows.data())) {
    error = s->message;
    file.clear();
    return false;
  }
  return true;
}

}  // namespace trainer

#pragma once
// Fixtures of the image reader's tests: small PNGs and JPEGs made with libpng and TurboJPEG, and
// the decoder's result or refusal for a file.
#include "trainer/tests/fault_helpers.hpp"

#include <turbojpeg.h>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace trainer_tests {
namespace images {

/// A PNG of `layout` from `rows` (packed as PNG stores them), made by libpng (png_codec.hpp).
inline std::vector<uint8_t> make_png(int width, int height, trainer::detail::PngLayout layout,
                                     const std::vector<uint8_t>& rows) {
  std::vector<uint8_t> file;
  std::string error;
  REQUIRE(encode_png(rows.data(), width, height, rows.size() / static_cast<size_t>(height), layout, file, error));
  return file;
}

inline trainer::detail::PngLayout layout_of(int color_type, int bit_depth) {
  trainer::detail::PngLayout layout;
  layout.color_type = color_type;
  layout.bit_depth = bit_depth;
  return layout;
}

/// A JPEG made by TurboJPEG from `pixels` (TJPF_RGB, TJPF_GRAY or TJPF_CMYK).
inline std::vector<uint8_t> make_jpeg(int width, int height, int pixel_format, int subsampling, int quality,
                                      const std::vector<uint8_t>& pixels, int flags = 0) {
  tjhandle handle = tjInitCompress();
  REQUIRE(handle != nullptr);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc =
      tjCompress2(handle, pixels.data(), width, 0, height, pixel_format, &out, &size, subsampling, quality, flags);
  INFO(tjGetErrorStr2(handle));
  std::vector<uint8_t> file;
  if (rc == 0) file.assign(out, out + size);
  tjFree(out);
  tjDestroy(handle);
  REQUIRE(rc == 0);
  return file;
}

inline DecodedImage decoded(const std::vector<uint8_t>& file, DecodeLimits limits = {}) {
  DecodedImage image;
  std::string error;
  INFO(error);
  const bool ok = decode_image(file.data(), file.size(), limits, image, error);
  INFO(error);
  REQUIRE(ok);
  return image;
}

inline std::string refusal(const std::vector<uint8_t>& file, DecodeLimits limits = {}) {
  DecodedImage image;
  std::string error;
  CHECK_FALSE(decode_image(file.data(), file.size(), limits, image, error));
  CHECK(image.pixels.empty());
  return error;
}

inline std::vector<uint8_t> repeat(std::vector<uint8_t> pixel, int times) {
  std::vector<uint8_t> out;
  for (int i = 0; i < times; ++i) out.insert(out.end(), pixel.begin(), pixel.end());
  return out;
}

}  // namespace images
}  // namespace trainer_tests

// libFuzzer target: the example trainer's image reader (examples/trainer/data/image_decode.hpp:
// the header checks, then libjpeg-turbo or libpng), i.e. every byte of a training image or a
// `translate` input. Built by fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined (the
// instrumentation covers this project's code; Debian's libjpeg-turbo and libpng are not
// instrumented, ASan still sees their heap use through malloc); seeds in fuzz/corpus/trainer_image/.
// Checks on every input: a decoded image has the size and channels (1 or 3) it announces and
// converts to the other channel count; a small one survives a PNG round trip unchanged; a failure
// says why.
#define FMT_HEADER_ONLY
#include "trainer/data/image_decode.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trainer::DecodeLimits limits;
  limits.max_pixels = int64_t{1} << 20;  // 1 megapixel: keeps each execution fast; the checks are the same
  trainer::DecodedImage image;
  std::string error;
  if (!trainer::decode_image(data, size, limits, image, error)) {
    if (error.empty() || !image.pixels.empty()) std::abort();  // every failure says why, and keeps nothing
    return 0;
  }
  const size_t pixels = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  if (image.width <= 0 || image.height <= 0 || static_cast<int64_t>(pixels) > limits.max_pixels ||
      (image.channels != 1 && image.channels != 3) || image.pixels.size() != pixels * image.channels)
    std::abort();
  const int other = image.channels == 1 ? 3 : 1;
  if (trainer::to_channels(image.pixels, image.channels, other).size() != pixels * other) std::abort();
  if (pixels <= 4096) {  // PNG is lossless: encode and decode again, byte for byte
    trainer::detail::PngLayout layout;
    layout.color_type = image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
    std::vector<uint8_t> png;
    if (!trainer::encode_png(image.pixels.data(), image.width, image.height,
                             static_cast<size_t>(image.width) * image.channels, layout, png, error))
      std::abort();
    trainer::DecodedImage again;
    if (!trainer::decode_image(png.data(), png.size(), limits, again, error) || again.width != image.width ||
        again.height != image.height || again.channels != image.channels || again.pixels != image.pixels)
      std::abort();
  }
  return 0;
}

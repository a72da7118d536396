// The image reader (data/image_decode.hpp: libjpeg-turbo and libpng behind the header checks):
// pixel values of small files made here with the same libraries, every PNG colour type and bit
// depth, and channel conversion.
#include "trainer/tests/image_decode_helpers.hpp"

#include <algorithm>
#include <numeric>

using namespace trainer_tests;
using namespace trainer_tests::images;

TEST_CASE("PNGs of every colour type and bit depth decode to their own channels with exact values", "[image][faults]") {
  SECTION("8-bit RGB and gray are lossless, row-major") {
    const std::vector<uint8_t> rgb = {1, 2, 3, 250, 128, 0, 9, 8, 7, 0, 255, 64, 5, 5, 5, 100, 200, 33};
    auto image = decoded(make_png(3, 2, layout_of(PNG_COLOR_TYPE_RGB, 8), rgb));
    CHECK((image.width == 3 && image.height == 2 && image.channels == 3));
    CHECK(image.pixels == rgb);
    const std::vector<uint8_t> gray = {0, 17, 255, 128, 3, 99};
    image = decoded(make_png(2, 3, layout_of(PNG_COLOR_TYPE_GRAY, 8), gray));
    CHECK((image.width == 2 && image.height == 3 && image.channels == 1));
    CHECK(image.pixels == gray);
  }
  SECTION("1-bit gray expands to 0 and 255; Adam7 interlacing decodes to the same pixels") {
    auto layout = layout_of(PNG_COLOR_TYPE_GRAY, 1);
    const auto plain = decoded(make_png(10, 1, layout, {0xa5, 0xc0}));  // 1010 0101 11
    CHECK(plain.channels == 1);
    CHECK(plain.pixels == std::vector<uint8_t>{255, 0, 255, 0, 0, 255, 0, 255, 255, 255});
    std::vector<uint8_t> rgb(9 * 11 * 3);
    std::iota(rgb.begin(), rgb.end(), uint8_t{7});
    auto interlaced = layout_of(PNG_COLOR_TYPE_RGB, 8);
    interlaced.interlaced = true;
    const auto a = make_png(9, 11, interlaced, rgb);
    CHECK(a[28] == 1);  // IHDR's interlace method: Adam7
    CHECK(decoded(a).pixels == rgb);
  }
  SECTION("palette -> RGB; tRNS transparency dropped") {
    auto layout = layout_of(PNG_COLOR_TYPE_PALETTE, 2);
    layout.palette = {{255, 0, 0}, {0, 128, 0}, {10, 20, 30}};
    layout.transparency = {0, 77};  // index 0 fully transparent: its colour is kept all the same
    const auto image = decoded(make_png(4, 1, layout, {0x09}));  // indices 0 0 2 1
    CHECK(image.channels == 3);
    CHECK(image.pixels == std::vector<uint8_t>{255, 0, 0, 255, 0, 0, 10, 20, 30, 0, 128, 0});
  }
  SECTION("16-bit samples scale to round(v * 255 / 65535), not v >> 8; alpha dropped") {
    // 0x12f0 = 4848: 18.86 rounds to 19 (v >> 8 would be 18); 0x8080 -> 128; 0xffff -> 255.
    const auto rgb16 = decoded(make_png(2, 1, layout_of(PNG_COLOR_TYPE_RGB, 16),
                                        {0x12, 0xf0, 0x80, 0x80, 0xff, 0xff, 0x00, 0x00, 0x00, 0x7f, 0x01, 0x00}));
    CHECK(rgb16.channels == 3);
    CHECK(rgb16.pixels == std::vector<uint8_t>{19, 128, 255, 0, 0, 1});
    const auto gray_alpha16 = decoded(
        make_png(1, 2, layout_of(PNG_COLOR_TYPE_GRAY_ALPHA, 16), {0x12, 0xf0, 0x00, 0x00, 0xff, 0xff, 0x12, 0x34}));
    CHECK(gray_alpha16.channels == 1);
    CHECK(gray_alpha16.pixels == std::vector<uint8_t>{19, 255});
  }
  SECTION("gray + alpha -> gray and RGBA -> RGB keep the stored colours (alpha dropped, not blended)") {
    const auto ga = decoded(make_png(2, 1, layout_of(PNG_COLOR_TYPE_GRAY_ALPHA, 8), {40, 0, 200, 128}));
    CHECK(ga.channels == 1);
    CHECK(ga.pixels == std::vector<uint8_t>{40, 200});
    const auto rgba = decoded(make_png(2, 1, layout_of(PNG_COLOR_TYPE_RGBA, 8), {1, 2, 3, 0, 250, 251, 252, 255}));
    CHECK(rgba.channels == 3);
    CHECK(rgba.pixels == std::vector<uint8_t>{1, 2, 3, 250, 251, 252});
  }
}

TEST_CASE("JPEGs decode through libjpeg-turbo: gray to 1 channel, colour to RGB, pinned values", "[image][faults]") {
  // Solid colours, quality 100: libjpeg-turbo's accurate integer DCT gives these values.
  const auto rgb = decoded(make_jpeg(16, 16, TJPF_RGB, TJSAMP_444, 100, repeat({200, 30, 90}, 256)));
  CHECK((rgb.width == 16 && rgb.height == 16 && rgb.channels == 3));
  CHECK(rgb.pixels == repeat({200, 31, 90}, 256));
  const auto gray = decoded(make_jpeg(16, 16, TJPF_GRAY, TJSAMP_GRAY, 100, std::vector<uint8_t>(256, 77)));
  CHECK(gray.channels == 1);
  CHECK(gray.pixels == std::vector<uint8_t>(256, 77));
  // Progressive and 4:2:0 subsampled: the same solid colour.
  const auto progressive =
      decoded(make_jpeg(16, 16, TJPF_RGB, TJSAMP_420, 100, repeat({200, 30, 90}, 256), TJFLAG_PROGRESSIVE));
  CHECK(progressive.pixels == repeat({200, 31, 90}, 256));
  // The committed 13 x 7 baseline JPEG (a gray ramp): its first four pixels.
  const auto seed = decoded(small_jpeg());
  CHECK((seed.width == 13 && seed.height == 7 && seed.channels == 3));
  CHECK(std::vector<uint8_t>(seed.pixels.begin(), seed.pixels.begin() + 12) ==
        std::vector<uint8_t>{0, 0, 0, 46, 46, 46, 77, 77, 77, 114, 114, 114});
  // CMYK (TurboJPEG writes it as YCCK) is refused, saying what to do.
  CHECK(
      refusal(make_jpeg(8, 8, TJPF_CMYK, TJSAMP_444, 90, std::vector<uint8_t>(256, 9))) ==
      "unsupported JPEG colour space YCCK: the trainer reads gray, RGB and YCbCr JPEGs (convert it to RGB first, e.g. "
      "`convert in.jpg -colorspace sRGB out.jpg`)");
}

TEST_CASE("Channel conversion: RGB -> gray with PIL's BT.601 weights, gray -> RGB by repetition", "[image][faults]") {
  // (19595 R + 38470 G + 7471 B + 32768) >> 16
  CHECK(to_channels({255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30, 255, 255, 255}, 3, 1) ==
        std::vector<uint8_t>{76, 150, 29, 124, 255});
  CHECK(to_channels({0, 9, 255}, 1, 3) == std::vector<uint8_t>{0, 0, 0, 9, 9, 9, 255, 255, 255});
  CHECK(to_channels({4, 5, 6}, 3, 3) == std::vector<uint8_t>{4, 5, 6});
  CHECK_THROWS_WITH(to_channels({1, 2}, 2, 3), "to_channels: expected 1 or 3 channels, got 2 -> 3");
  DecodedImage gray;
  gray.width = 2, gray.height = 1, gray.channels = 1, gray.pixels = {7, 200};
  const auto rgb = to_channels(gray, 3);
  CHECK((rgb.channels == 3 && rgb.pixels == std::vector<uint8_t>{7, 7, 7, 200, 200, 200}));
  // decode_rgb: a gray PNG comes back as RGB.
  int w = 0, h = 0;
  std::vector<uint8_t> pixels;
  std::string error;
  const auto png = make_png(2, 1, layout_of(PNG_COLOR_TYPE_GRAY, 8), {7, 200});
  REQUIRE(decode_rgb(png.data(), png.size(), {}, w, h, pixels, error));
  CHECK((w == 2 && h == 1 && pixels == std::vector<uint8_t>{7, 7, 7, 200, 200, 200}));
}

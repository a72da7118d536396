// The image reader (data/image_decode.hpp: libjpeg-turbo and libpng behind the header checks):
// pixel values of small files made here with the same libraries, every PNG colour type and bit
// depth, hostile files (truncated, corrupt, oversized headers, other formats), the fuzzer's corpus,
// PNG writing, and the real photographs of ../shared/data when they are there.
#include "trainer/tests/fault_helpers.hpp"

#include <turbojpeg.h>
#include <zlib.h>

#include <algorithm>
#include <numeric>
#include <random>

using namespace trainer_tests;

namespace {

/// A PNG of `layout` from `rows` (packed as PNG stores them), made by libpng (png_codec.hpp).
std::vector<uint8_t> make_png(int width, int height, trainer::detail::PngLayout layout, const std::vector<uint8_t>& rows) {
  std::vector<uint8_t> file;
  std::string error;
  REQUIRE(encode_png(rows.data(), width, height, rows.size() / static_cast<size_t>(height), layout, file, error));
  return file;
}

trainer::detail::PngLayout layout_of(int color_type, int bit_depth) {
  trainer::detail::PngLayout layout;
  layout.color_type = color_type;
  layout.bit_depth = bit_depth;
  return layout;
}

/// A JPEG made by TurboJPEG from `pixels` (TJPF_RGB, TJPF_GRAY or TJPF_CMYK).
std::vector<uint8_t> make_jpeg(int width, int height, int pixel_format, int subsampling, int quality,
                               const std::vector<uint8_t>& pixels, int flags = 0) {
  tjhandle handle = tjInitCompress();
  REQUIRE(handle != nullptr);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(handle, pixels.data(), width, 0, height, pixel_format, &out, &size, subsampling, quality, flags);
  INFO(tjGetErrorStr2(handle));
  std::vector<uint8_t> file;
  if (rc == 0) file.assign(out, out + size);
  tjFree(out);
  tjDestroy(handle);
  REQUIRE(rc == 0);
  return file;
}

DecodedImage decoded(const std::vector<uint8_t>& file, DecodeLimits limits = {}) {
  DecodedImage image;
  std::string error;
  INFO(error);
  const bool ok = decode_image(file.data(), file.size(), limits, image, error);
  INFO(error);
  REQUIRE(ok);
  return image;
}

std::string refusal(const std::vector<uint8_t>& file, DecodeLimits limits = {}) {
  DecodedImage image;
  std::string error;
  CHECK_FALSE(decode_image(file.data(), file.size(), limits, image, error));
  CHECK(image.pixels.empty());
  return error;
}

std::vector<uint8_t> repeat(std::vector<uint8_t> pixel, int times) {
  std::vector<uint8_t> out;
  for (int i = 0; i < times; ++i) out.insert(out.end(), pixel.begin(), pixel.end());
  return out;
}

}  // namespace

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
    const auto gray_alpha16 = decoded(make_png(1, 2, layout_of(PNG_COLOR_TYPE_GRAY_ALPHA, 16),
                                               {0x12, 0xf0, 0x00, 0x00, 0xff, 0xff, 0x12, 0x34}));
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
  CHECK(refusal(make_jpeg(8, 8, TJPF_CMYK, TJSAMP_444, 90, std::vector<uint8_t>(256, 9))) ==
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

TEST_CASE("Truncated and corrupt files are refused with the decoder's reason", "[image][faults]") {
  std::vector<uint8_t> noise(64 * 64 * 3);  // incompressible: the PNG has two IDAT chunks
  std::mt19937 rng(5);
  for (auto& v : noise) v = static_cast<uint8_t>(rng() >> 24);
  SECTION("PNG") {
    const auto png = make_png(64, 64, layout_of(PNG_COLOR_TYPE_RGB, 8), noise);
    auto cut = png;
    cut.resize(png.size() / 2);
    CHECK_THAT(refusal(cut), Catch::StartsWith(fmt::format("corrupt PNG: truncated: the file ends at byte {}, inside a "
                                                           "chunk that needs", cut.size())));
    auto flipped = png;
    flipped[png.size() / 2] ^= 0x10;  // inside the first IDAT: its CRC no longer matches
    CHECK(refusal(flipped) == "corrupt PNG: IDAT: CRC error");
    flipped = png;
    flipped[27] ^= 0x10;  // IHDR's filter method
    CHECK(refusal(flipped) == "corrupt PNG: IHDR: CRC error");
    auto header_only = png;
    header_only.resize(33);
    CHECK_THAT(refusal(header_only), Catch::StartsWith("corrupt PNG: truncated: the file ends at byte 33"));
  }
  SECTION("JPEG") {
    const auto jpeg = make_jpeg(64, 64, TJPF_RGB, TJSAMP_444, 95, noise);
    auto cut = jpeg;
    cut.resize(jpeg.size() - 500);
    CHECK(refusal(cut) == "corrupt JPEG: Premature end of JPEG file");
    auto no_end = jpeg;
    no_end.resize(jpeg.size() - 2);  // without EOI: libjpeg-turbo warns, which refuses the file
    CHECK(refusal(no_end) == "corrupt JPEG: Premature end of JPEG file");
    // A Huffman table of more than 256 symbols (stb_image 2.27 wrote past its arrays on it).
    CHECK(refusal(bytes_of({0xff, 0xd8, 0xff, 0xc4, 0x00, 0x1c, 0x03, 0xb3, 0xb3})) ==
          "corrupt JPEG header: Bogus Huffman table definition");
    CHECK(refusal(bytes_of({0xff, 0xd8, 0xff})) ==
          "corrupt JPEG header: the file ends before a frame header (SOF marker): no image in it");
  }
  SECTION("other formats, and no format at all") {
    CHECK(refusal(bytes_of({'B', 'M', 0x3a, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0})) ==
          "unsupported image format BMP: the trainer reads JPEG and PNG only");
    CHECK(refusal(bytes_of({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0, ';'})) ==
          "unsupported image format GIF: the trainer reads JPEG and PNG only");
    CHECK(refusal(bytes_of({'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'})) ==
          "unsupported image format WebP: the trainer reads JPEG and PNG only");
    CHECK(refusal(bytes_of({'I', 'I', '*', 0, 8, 0, 0, 0})) == "unsupported image format TIFF: the trainer reads JPEG and PNG only");
    // TGA has no signature: 18 bytes of a TGA header announcing 3072 x 65535.
    CHECK(refusal(bytes_of({0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0c, 0xff, 0xff, 24, 0})) ==
          "not a JPEG or PNG file (it starts with 00 00 02 00; expected ff d8 ff or 89 50 4e 47): the trainer reads JPEG "
          "and PNG only");
    CHECK(refusal(bytes_of({'h', 'i'})) == "not a JPEG or PNG file (it starts with 68 69; expected ff d8 ff or 89 50 4e "
                                           "47): the trainer reads JPEG and PNG only");
    CHECK(refusal({}) == "empty file (0 bytes)");
  }
}

TEST_CASE("Headers announcing more than the limits are refused before the pixels are allocated", "[image][faults]") {
  const std::vector<uint8_t> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const auto ihdr = [&](uint32_t w, uint32_t h) {  // a PNG cut after its IHDR (the size check comes first)
    auto file = signature;
    for (int b : {0, 0, 0, 13, int{'I'}, int{'H'}, int{'D'}, int{'R'}}) file.push_back(static_cast<uint8_t>(b));
    for (uint32_t v : {w, h})
      for (int shift : {24, 16, 8, 0}) file.push_back(static_cast<uint8_t>(v >> shift));
    for (int b : {8, 2, 0, 0, 0, 0, 0, 0, 0}) file.push_back(static_cast<uint8_t>(b));
    return file;
  };
  CHECK(refusal(ihdr(3072, 65535)) == "image header declares 3072 x 65535 = 201323520 pixels, more than the limit of "
                                      "67108864 (--max-image-pixels raises it)");
  CHECK(refusal(ihdr(0xffffffff, 0xffffffff)) == "image header declares 4294967295 x 4294967295 = 18446744065119617025 "
                                                 "pixels, more than the limit of 67108864 (--max-image-pixels raises it)");
  CHECK(refusal(ihdr(0, 7)) == "image header declares 0 x 7 pixels, expected at least 1 x 1");
  // A JPEG frame header (SOF0) announcing 65000 x 60000, after the tables of a real file.
  auto jpeg = small_jpeg();
  for (size_t i = 0; i + 8 < jpeg.size(); ++i)
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 5] = 0xea, jpeg[i + 6] = 0x60, jpeg[i + 7] = 0xfd, jpeg[i + 8] = 0xe8;  // height, width
      break;
    }
  CHECK(refusal(jpeg) == "image header declares 65000 x 60000 = 3900000000 pixels, more than the limit of 67108864 "
                         "(--max-image-pixels raises it)");
  // The limit is an option: the 13 x 7 JPEG is refused under 90 pixels and read under 91.
  DecodeLimits tight;
  tight.max_pixels = 90;
  CHECK(refusal(small_jpeg(), tight) == "image header declares 13 x 7 = 91 pixels, more than the limit of 90 "
                                        "(--max-image-pixels raises it)");
  tight.max_pixels = 91;
  CHECK(decoded(small_jpeg(), tight).width == 13);
  // Within the limit, but too short for its pixels: 8000 x 8000 of a PNG in a few hundred bytes.
  auto one_row = make_png(8000, 1, layout_of(PNG_COLOR_TYPE_RGB, 8), std::vector<uint8_t>(8000 * 3, 0));
  one_row[20] = 0, one_row[21] = 0, one_row[22] = 0x1f, one_row[23] = 0x40;  // height 8000
  const uLong crc = crc32(0, one_row.data() + 12, 17);                             // IHDR's CRC, renewed
  for (int i = 0; i < 4; ++i) one_row[29 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  CHECK(refusal(one_row) == fmt::format("file of {} bytes is too short for the 8000 x 8000 pixels its header declares "
                                        "(a PNG needs at least 7751 bytes for them): truncated, or a decompression bomb",
                                        one_row.size()));
  // Files larger than 4 bytes a pixel + 16 MB are not decoded at all.
  DecodeLimits small;
  small.max_pixels = 1;
  CHECK(refusal(std::vector<uint8_t>(small.max_file_bytes() + 1, 0xff), small) ==
        "file of 16777221 bytes, larger than any image within the pixel limit of 1 (--max-image-pixels raises it)");
}

TEST_CASE("Every file of the image fuzz corpus decodes or fails with a reason", "[image][faults]") {
  // fuzz/corpus/trainer_image/: the seeds (seed*: must decode), formats the trainer refuses
  // (unsupported-*), and every input that found a problem in this reader or in the stb_image
  // decoder it replaced (regression-*, crash-*, bomb-*).
  const fs::path corpus = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_image";
  REQUIRE(fs::is_directory(corpus));
  int files = 0, decoded_files = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string data = read_text(entry.path());
    const std::vector<uint8_t> bytes(data.begin(), data.end());
    std::string error;
    DecodedImage image;
    const bool ok = decode_image(bytes.data(), bytes.size(), {}, image, error);
    const std::string name = entry.path().filename().string();
    INFO(name << ": " << (ok ? "decoded" : error));
    CHECK((ok || !error.empty()));
    if (ok) CHECK(image.pixels.size() == size_t(image.width) * image.height * image.channels);
    ++files;
    decoded_files += ok;
    if (name.rfind("seed", 0) == 0) CHECK(ok);
    if (name.rfind("unsupported-", 0) == 0) CHECK_THAT(error, Catch::Contains("the trainer reads"));
    // stb's zlib inflated these 84 bytes without end; libpng stops where the file does.
    if (name == "regression-png-zlib-inflates-without-end.png")
      CHECK(error == "corrupt PNG: truncated: the file ends at byte 84, inside a chunk that needs 8149 more");
    // A first IDAT chunk of 0 bytes (stb memcpy()ed to NULL) is legal: the pixels come from the next.
    if (name == "regression-png-empty-first-idat.png") CHECK((ok && image.channels == 1 && image.pixels[1] == 19));
    if (name == "regression-png-empty-failure-reason.png") CHECK(error == "corrupt PNG: bad adaptive filter value");
    // A 257-symbol Huffman table (stb wrote past its arrays); a scan with an undefined Huffman table
    // (stb read stale tables); stb 2.27's shift by 32: libjpeg-turbo stops at the junk before them.
    if (name == "crash-dht-257-symbols.jpg") CHECK(error == "corrupt JPEG header: Bogus Huffman table definition");
    if (name == "regression-jpeg-stale-huffman-table.jpg" || name == "regression-jpeg-stb-shift-by-32.jpg")
      CHECK_THAT(error, Catch::StartsWith("corrupt JPEG header: Corrupt JPEG data:"));
    if (name == "bomb-png-3072x65535.png") CHECK_THAT(error, Catch::Contains("more than the limit"));
    if (name == "seed-palette4-trns.png") CHECK((image.channels == 3 && image.width == 9));
    if (name == "seed-rgba16.png" || name == "seed-progressive-420.jpg") CHECK(image.channels == 3);
    if (name == "seed-gray-alpha8.png" || name == "seed-gray16.png" || name == "seed-gray.jpg") CHECK(image.channels == 1);
  }
  CHECK(files >= 28);
  CHECK(decoded_files >= 19);
}

TEST_CASE("write_png writes gray and RGB PNGs that read back unchanged", "[image][faults]") {
  TempDir dir("png-write");
  Image rgb;
  rgb.width = 3, rgb.height = 2, rgb.pixels = {0, 1, 2, 3, 4, 5, 250, 251, 252, 9, 99, 199, 30, 60, 90, 128, 64, 32};
  write_png(dir.path / "rgb.png", rgb);
  CHECK_FALSE(fs::exists(dir.path / "rgb.png.tmp"));
  std::string error;
  const Image back = read_image(dir.path / "rgb.png", &error);
  CHECK((back.width == 3 && back.height == 2 && back.pixels == rgb.pixels));
  write_png(dir.path / "gray.png", 2, 2, 1, {0, 85, 170, 255});
  const DecodedImage gray = read_decoded_image(dir.path / "gray.png", &error);
  CHECK((gray.channels == 1 && gray.pixels == std::vector<uint8_t>{0, 85, 170, 255}));
  CHECK(read_image(dir.path / "gray.png").pixels == std::vector<uint8_t>{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255});
  CHECK_THROWS_WITH(write_png(dir.path / "bad.png", 2, 2, 3, {1, 2, 3}),
                    Catch::Contains("2 x 2 pixels of 3 channels (1 or 3) and 3 bytes do not match"));
  CHECK_THROWS_WITH(write_png(dir.path / "no" / "such" / "dir.png", rgb), Catch::Contains("cannot write PNG"));
}

TEST_CASE("The real photographs of ../shared/data/monet_etretat decode", "[image][faults]") {
  const fs::path root = fs::path(PATCHGCL_SOURCE_DIR) / ".." / "shared" / "data" / "monet_etretat";
  if (!fs::is_directory(root)) {
    WARN("skipped: " << root.string() << " is absent");
    return;
  }
  struct Expected {
    const char* file;
    int width, height;
    uint64_t sum;  // of every byte of the decoded RGB image
  };
  for (const Expected& e : {Expected{"trainA/monet.jpg", 1200, 966, 596927025},
                            Expected{"trainB/etretat-normandy-france.jpg", 1024, 768, 249541118}}) {
    if (!fs::exists(root / e.file)) {
      WARN("skipped: " << (root / e.file).string() << " is absent");
      continue;
    }
    std::string error;
    const DecodedImage image = read_decoded_image(root / e.file, &error);
    INFO(e.file << ": " << error);
    CHECK((image.width == e.width && image.height == e.height && image.channels == 3));
    CHECK(std::accumulate(image.pixels.begin(), image.pixels.end(), uint64_t{0}) == e.sum);
  }
}

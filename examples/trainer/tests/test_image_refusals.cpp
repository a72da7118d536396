// The image reader on hostile files (truncated, corrupt, oversized headers, other formats), the
// fuzzer's corpus, PNG writing, and the real photographs of ../shared/data when they are there.
#include "trainer/tests/image_decode_helpers.hpp"

#include <zlib.h>

#include <algorithm>
#include <numeric>
#include <random>

using namespace trainer_tests;
using namespace trainer_tests::images;

TEST_CASE("Truncated and corrupt files are refused with the decoder's reason", "[image][faults]") {
  std::vector<uint8_t> noise(64 * 64 * 3);  // incompressible: the PNG has two IDAT chunks
  std::mt19937 rng(5);
  for (auto& v : noise) v = static_cast<uint8_t>(rng() >> 24);
  SECTION("PNG") {
    const auto png = make_png(64, 64, layout_of(PNG_COLOR_TYPE_RGB, 8), noise);
    auto cut = png;
    cut.resize(png.size() / 2);
    CHECK_THAT(refusal(cut), Catch::StartsWith(fmt::format("corrupt PNG: truncated: the file ends at byte {}, inside a "
                                                           "chunk that needs",
                                                           cut.size())));
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
    CHECK(refusal(bytes_of({'I', 'I', '*', 0, 8, 0, 0, 0})) ==
          "unsupported image format TIFF: the trainer reads JPEG and PNG only");
    // TGA has no signature: 18 bytes of a TGA header announcing 3072 x 65535.
    CHECK(
        refusal(bytes_of({0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0c, 0xff, 0xff, 24, 0})) ==
        "not a JPEG or PNG file (it starts with 00 00 02 00; expected ff d8 ff or 89 50 4e 47): the trainer reads JPEG "
        "and PNG only");
    CHECK(refusal(bytes_of({'h', 'i'})) ==
          "not a JPEG or PNG file (it starts with 68 69; expected ff d8 ff or 89 50 4e "
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
  CHECK(refusal(ihdr(3072, 65535)) ==
        "image header declares 3072 x 65535 = 201323520 pixels, more than the limit of "
        "67108864 (--max-image-pixels raises it)");
  CHECK(refusal(ihdr(0xffffffff, 0xffffffff)) ==
        "image header declares 4294967295 x 4294967295 = 18446744065119617025 "
        "pixels, more than the limit of 67108864 (--max-image-pixels raises it)");
  CHECK(refusal(ihdr(0, 7)) == "image header declares 0 x 7 pixels, expected at least 1 x 1");
  // A JPEG frame header (SOF0) announcing 65000 x 60000, after the tables of a real file.
  auto jpeg = small_jpeg();
  for (size_t i = 0; i + 8 < jpeg.size(); ++i)
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 5] = 0xea, jpeg[i + 6] = 0x60, jpeg[i + 7] = 0xfd, jpeg[i + 8] = 0xe8;  // height, width
      break;
    }
  CHECK(refusal(jpeg) ==
        "image header declares 65000 x 60000 = 3900000000 pixels, more than the limit of 67108864 "
        "(--max-image-pixels raises it)");
  // The limit is an option: the 13 x 7 JPEG is refused under 90 pixels and read under 91.
  DecodeLimits tight;
  tight.max_pixels = 90;
  CHECK(refusal(small_jpeg(), tight) ==
        "image header declares 13 x 7 = 91 pixels, more than the limit of 90 "
        "(--max-image-pixels raises it)");
  tight.max_pixels = 91;
  CHECK(decoded(small_jpeg(), tight).width == 13);
  // Within the limit, but too short for its pixels: 8000 x 8000 of a PNG in a few hundred bytes.
  auto one_row = make_png(8000, 1, layout_of(PNG_COLOR_TYPE_RGB, 8), std::vector<uint8_t>(8000 * 3, 0));
  one_row[20] = 0, one_row[21] = 0, one_row[22] = 0x1f, one_row[23] = 0x40;  // height 8000
  const uLong crc = crc32(0, one_row.data() + 12, 17);                       // IHDR's CRC, renewed
  for (int i = 0; i < 4; ++i) one_row[29 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  CHECK(refusal(one_row) ==
        fmt::format("file of {} bytes is too short for the 8000 x 8000 pixels its header declares "
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
    if (name == "seed-gray-alpha8.png" || name == "seed-gray16.png" || name == "seed-gray.jpg")
      CHECK(image.channels == 1);
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
  CHECK(read_image(dir.path / "gray.png").pixels ==
        std::vector<uint8_t>{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255});
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

// The image reader against hostile files (oversized headers, stb's known defects, the fuzzer's findings):
// stb_image 2.27 sees a file only after image_checks.hpp and decode_rgb have checked it.
#include "trainer/tests/fault_helpers.hpp"

#include <algorithm>

using namespace trainer_tests;

TEST_CASE("A JPEG Huffman table of more than 256 symbols is refused before stb_image parses it", "[image][faults]") {
  // stb 2.27 writes this table past `stbi_uc size[257]` (UBSan: index 257 out of bounds).
  std::string error;
  CHECK_FALSE(decode(bytes_of({0xff, 0xd8, 0xff, 0xc4, 0x00, 0x1c, 0x03, 0xb3, 0xb3}), error));
  CHECK(error == "corrupt JPEG: Huffman table (DHT segment at byte 2) declares 358 symbols, at most 256 exist");
  // The same check after fill bytes, junk and a comment, as stb would reach it.
  CHECK_FALSE(decode(bytes_of({0xff, 0xff, 0xd8, 0xff, 0xfe, 0x00, 0x03, 0x41, 0x00, 0x17, 0xff, 0xff, 0xc4, 0x00,
                               0x13, 0x10, 0xff, 0xff}), error));
  CHECK_THAT(error, Catch::Contains("declares 510 symbols"));
  // Valid JPEGs (their DHT segments hold 12 and 162 symbols) decode.
  const auto jpeg = small_jpeg();
  CHECK(check_jpeg_huffman_tables(jpeg.data(), jpeg.size()).empty());
  int w = 0, h = 0;
  std::vector<uint8_t> pixels;
  REQUIRE(decode_rgb(jpeg.data(), jpeg.size(), {}, w, h, pixels, error));
  CHECK((w == 13 && h == 7 && pixels.size() == 13u * 7 * 3));
  // A DHT segment that announces too much, after a valid scan (between scans, as in progressive files).
  auto two_scans = jpeg;
  two_scans.resize(two_scans.size() - 2);  // drop EOI
  for (int b : {0xff, 0xc4, 0x00, 0x13, 0x00}) two_scans.push_back(static_cast<uint8_t>(b));
  for (int i = 0; i < 16; ++i) two_scans.push_back(0x20);
  CHECK_THAT(check_jpeg_huffman_tables(two_scans.data(), two_scans.size()), Catch::Contains("declares 512 symbols"));
}

TEST_CASE("Images whose header announces more pixels than the limit are refused before decoding", "[image][faults]") {
  // 18 bytes of TGA header announcing 3072 x 65535 (1.2 GB when decoded).
  std::string error;
  CHECK_FALSE(decode(bytes_of({0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0c, 0xff, 0xff, 24, 0}), error));
  CHECK(error == "image header declares 3072 x 65535 = 201323520 pixels, more than the limit of 67108864 "
                 "(--max-image-pixels raises it)");
  // The limit is an option: the same 13 x 7 JPEG is refused under 90 pixels and read under the default.
  const auto jpeg = small_jpeg();
  DecodeLimits tight;
  tight.max_pixels = 90;
  CHECK_FALSE(decode(jpeg, error, tight));
  CHECK_THAT(error, Catch::Contains("13 x 7 = 91 pixels, more than the limit of 90"));
  CHECK(decode(jpeg, error));
  // Other formats stb knows are not read (the trainer reads JPEG, PNG, BMP and TGA only), and a
  // failure always says why.
  CHECK_FALSE(decode(bytes_of({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0, ';'}), error));
  CHECK_FALSE(error.empty());
  CHECK_FALSE(decode({}, error));
  CHECK(error == "empty file (0 bytes)");
}

TEST_CASE("Every file of the image fuzz corpus decodes or fails with a reason, within bounded memory", "[image][faults]") {
  // fuzz/corpus/trainer_image/: the seeds and every input the fuzzer found a problem with (regression-*).
  const fs::path corpus = fs::path(PATCHGCL_SOURCE_DIR) / "fuzz" / "corpus" / "trainer_image";
  REQUIRE(fs::is_directory(corpus));
  int files = 0, decoded = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string data = read_text(entry.path());
    const std::vector<uint8_t> bytes(data.begin(), data.end());
    std::string error;
    const bool ok = decode(bytes, error);
    const std::string name = entry.path().filename().string();
    INFO(name << ": " << (ok ? "decoded" : error));
    CHECK((ok || !error.empty()));
    ++files;
    decoded += ok;
    if (name.rfind("seed", 0) == 0) CHECK(ok);
    // 84 bytes that stb's zlib inflated to hundreds of MB (1 s under ASan): now stopped by the budget.
    if (name == "regression-png-zlib-inflates-without-end.png") CHECK(error == "outofmem");
    // 219 bytes of RLE TGA announcing 18172 x 215 pixels, decoded from zeros past its end (13 s under ASan).
    if (name == "regression-tga-rle-bomb-within-limit.tga")
      CHECK(error == "file of 219 bytes is too short for the 18172 x 215 pixels its header declares (this format "
                     "needs at least 61046 bytes for them): truncated, or a decompression bomb");
    // A PNG whose first IDAT chunk is empty: stb memcpy()s to NULL (UBSan).
    if (name == "regression-png-empty-first-idat.png") CHECK(error == "corrupt PNG: its first IDAT chunk (at byte 33) is empty");
    // stb failed with an empty reason.
    if (name == "regression-png-empty-failure-reason.png") CHECK(error == "corrupt or truncated image data");
    // A JPEG with a 257-symbol Huffman table, and a TGA header announcing 3072 x 65535.
    if (name == "crash-dht-257-symbols.jpg") CHECK_THAT(error, Catch::Contains("Huffman table"));
    if (name == "bomb-tga-3072x65535.tga") CHECK_THAT(error, Catch::Contains("more than the limit"));
  }
  CHECK(files >= 23);
  CHECK(decoded >= 16);
}

TEST_CASE("stb_image's working memory is zeroed, so no table of an earlier image survives into the next", "[image][faults]") {
  // A JPEG scan may use a Huffman table its file never defined; stb 2.27 then decodes with whatever
  // its freshly allocated (not cleared) state holds. With an earlier image's tables there, the fuzzer
  // hit stb's out-of-table assertion (fuzz/corpus/trainer_image/regression-jpeg-stale-huffman-table.jpg).
  void* dirty = trainer::detail::stb_malloc(20000);
  REQUIRE(dirty != nullptr);
  std::memset(dirty, 0xab, 20000);
  trainer::detail::stb_free(dirty);
  auto* fresh = static_cast<unsigned char*>(trainer::detail::stb_malloc(20000));
  REQUIRE(fresh != nullptr);
  CHECK(std::all_of(fresh, fresh + 20000, [](unsigned char b) { return b == 0; }));
  trainer::detail::stb_free(fresh);
}

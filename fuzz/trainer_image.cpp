// libFuzzer target: the example trainer's image reader (examples/trainer/data/image_decode.hpp), i.e.
// every byte of a training image or a `translate` input. Built by fuzz/CMakeLists.txt with
// -fsanitize=fuzzer,address,undefined; seeds in fuzz/corpus/trainer_image/.
//
// One open finding in stb_image 2.27 itself (docs/reliability.md, fuzz/known-crashes/): after an
// unknown Huffman code, stbi__grow_buffer_unsafe shifts a 32-bit value by 32 (UBSan: "shift
// exponent 32 is too large"; on x86 wrong pixels, no memory access). Fixed upstream in 2.28, not in
// Debian's copy, and it stops almost every run within minutes, so UBSan's shift-exponent check is
// off in the functions of image_decode.hpp (stb's, and the front end's, whose shifts are by
// constants of at most 24); every other check stays on. -DPATCHGCL_FUZZ_CHECK_STB_SHIFTS turns it
// back on to reproduce the known crash.
#define FMT_HEADER_ONLY
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include <fmt/format.h>  // the libraries first: the pragma below is for image_decode.hpp's own functions
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#ifndef PATCHGCL_FUZZ_CHECK_STB_SHIFTS
#pragma clang attribute push(__attribute__((no_sanitize("shift-exponent"))), apply_to = function)
#endif
#include "trainer/data/image_decode.hpp"
#ifndef PATCHGCL_FUZZ_CHECK_STB_SHIFTS
#pragma clang attribute pop
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trainer::DecodeLimits limits;
  limits.max_pixels = int64_t{1} << 20;  // 1 megapixel: keeps each execution fast; the check is the same
  int w = 0, h = 0;
  std::vector<uint8_t> pixels;
  std::string error;
  if (trainer::decode_rgb(data, size, limits, w, h, pixels, error)) {
    if (w <= 0 || h <= 0 || int64_t{w} * h > limits.max_pixels || pixels.size() != size_t(w) * size_t(h) * 3) std::abort();
  } else if (error.empty()) {
    std::abort();  // every failure says why
  }
  return 0;
}

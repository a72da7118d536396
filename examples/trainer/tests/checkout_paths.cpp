// The one test file compiled with the checkout's paths (checkout_paths.hpp says why). No LibTorch here.
#include "trainer/tests/checkout_paths.hpp"

namespace trainer_tests::checkout {
const char* source_dir() { return PATCHGCL_CHECKOUT_SOURCE_DIR; }
const char* fixture_dir() { return PATCHGCL_CHECKOUT_FIXTURE_DIR; }
const char* trainer_binary() { return PATCHGCL_CHECKOUT_TRAINER_BINARY; }
}  // namespace trainer_tests::checkout

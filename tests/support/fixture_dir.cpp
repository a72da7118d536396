// The one test file compiled with the checkout's path (declared in support/fixture.hpp, which says
// why). No LibTorch here: it compiles in a moment.
namespace patchgcl_test {
const char* fixture_dir() { return PATCHGCL_CHECKOUT_FIXTURE_DIR; }
}  // namespace patchgcl_test

// Catch2's runner, compiled once for every test executable (patchgcl_catch_runner in
// cmake/test_build.cmake): each executable's main() decides what to run, then calls this.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

namespace patchgcl_test {
/// Runs the test cases that `argv` selects; returns Catch2's exit code.
int run_catch(int argc, char** argv) { return Catch::Session().run(argc, argv); }
}  // namespace patchgcl_test

// main(); the test cases live in the other files of this folder. Where PATCHGCL_TEST_DEVICE
// names a device this machine lacks, nothing runs: the executable says so and exits with 77,
// which ctest reports as skipped (SKIP_RETURN_CODE in CMakeLists.txt).
#include <iostream>
#include <string>

namespace patchgcl_test {
// test_device.cpp: empty when PATCHGCL_TEST_DEVICE is usable, otherwise why not; throws on a
// malformed name. Prints the device.
std::string check_test_device();
int run_catch(int argc, char** argv);  // Catch2's runner, compiled once: tests/support/catch_runner.cpp
}  // namespace patchgcl_test

int main(int argc, char* argv[]) {
  std::string reason;
  try {
    reason = patchgcl_test::check_test_device();
  } catch (const std::exception& e) {
    std::cerr << "patchgcl_tests: bad PATCHGCL_TEST_DEVICE: " << e.what() << "\n";
    return 2;
  }
  if (!reason.empty()) {
    std::cerr << "patchgcl_tests: SKIPPED, " << reason << "\n";
    return 77;
  }
  return patchgcl_test::run_catch(argc, argv);
}

// Catch2's runner, or one rank of a multi-process test when started as `--worker NAME ...`
// (the tests spawn this executable: tests/support/multi_process.hpp).
#include <cstring>

int run_worker(int argc, char** argv);  // workers.cpp

namespace patchgcl_test {
int run_catch(int argc, char** argv);  // Catch2's runner, compiled once: tests/support/catch_runner.cpp
}  // namespace patchgcl_test

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--worker") == 0) return run_worker(argc, argv);
  return patchgcl_test::run_catch(argc, argv);
}

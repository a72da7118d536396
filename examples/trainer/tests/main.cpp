// Catch2's runner, or one rank of a multi-process unit test when started as `--worker NAME ...`
// (workers.cpp); and the one definition of stb_image_resize (image_io.hpp) for the trainer's tests. No LibTorch here:
// this file compiles in seconds, without the precompiled header.
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include "trainer/data/image_io.hpp"

#include <cstring>

#ifdef PATCHGCL_TRAINER_TEST_WORKERS
int run_worker(int argc, char** argv);  // workers.cpp (built where Gloo is)
#endif

namespace patchgcl_test {
int run_catch(int argc, char** argv);  // Catch2's runner, compiled once: tests/support/catch_runner.cpp
}  // namespace patchgcl_test

int main(int argc, char** argv) {
#ifdef PATCHGCL_TRAINER_TEST_WORKERS
  if (argc > 1 && std::strcmp(argv[1], "--worker") == 0) return run_worker(argc, argv);
#endif
  return patchgcl_test::run_catch(argc, argv);
}

// Catch2's runner, or one rank of a multi-process unit test when started as `--worker NAME ...`
// (workers.cpp); and the one definition of stb_image_resize (image_io.hpp) for the
// trainer's tests. No LibTorch here: this file compiles in seconds, without the precompiled header.
#define CATCH_CONFIG_RUNNER
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include "trainer/data/image_io.hpp"

#include <catch2/catch.hpp>

#include <cstring>

#ifdef PATCHGCL_TRAINER_TEST_WORKERS
int run_worker(int argc, char** argv);  // workers.cpp (built where Gloo is)
#endif

int main(int argc, char** argv) {
#ifdef PATCHGCL_TRAINER_TEST_WORKERS
  if (argc > 1 && std::strcmp(argv[1], "--worker") == 0) return run_worker(argc, argv);
#endif
  return Catch::Session().run(argc, argv);
}

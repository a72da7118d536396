// Catch2's runner, or one rank of a multi-process test when started as `--worker NAME ...`
// (the tests spawn this executable; see process.hpp).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstring>

int run_worker(int argc, char** argv);  // workers.cpp

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--worker") == 0) return run_worker(argc, argv);
  return Catch::Session().run(argc, argv);
}

#!/usr/bin/env bash
# The test suite, the library's and the trainer's, under AddressSanitizer + UndefinedBehaviorSanitizer,
# in a build directory of its own (build-sanitize/). LibTorch is not instrumented; see
# docs/reliability.md for what is checked and the runtime options (PATCHGCL_SANITIZE_ENV in the
# top-level CMakeLists.txt).
#   scripts/sanitize.sh                   # everything but install_and_consume and trainer_distributed
#   PATCHGCL_PROPERTY_CASES=30000 scripts/sanitize.sh -R properties
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
build="${BUILD_DIR:-$root/build-sanitize}"
# -O1, as the sanitizers' documentation advises: it compiles the instrumented tests in about 40%
# less time than Release's -O3 and keeps the reports' stacks exact; LibTorch's kernels, where the
# tests spend their time, are not rebuilt.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DPATCHGCL_SANITIZE=ON \
  -DPATCHGCL_BUILD_EXAMPLES=ON -DPATCHGCL_BUILD_BENCHMARKS=OFF "${launcher[@]}" ${CMAKE_ARGS:-}
# Every test executable at once (patchgcl_test_executables: the library's, the trainer's and, where
# Debian's libgloo-dev is found, the multi-process ones, every rank an instrumented process).
cmake --build "$build" -j "$jobs" --target patchgcl_test_executables
cd "$build"
# install_and_consume builds a separate, uninstrumented consumer: nothing to sanitize. Of the
# trainer's multi-process tests, dist/'s units run here (trainer_dist_units); the whole-trainer runs
# (trainer_distributed) check behaviour and run in the other lanes.
ctest --output-on-failure -j "$jobs" -E '^(install_and_consume|trainer_distributed)$' "$@"

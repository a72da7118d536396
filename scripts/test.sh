#!/usr/bin/env bash
# The whole test suite: installs what is missing, configures, builds, runs ctest.
#   scripts/test.sh                                  # Debian's LibTorch 1.13, build/
#   TORCH=pypi:2.15.0 scripts/test.sh                # PyPI's torch wheel (CPU libraries), build-torch-2.15.0/
#   TORCH=/opt/libtorch scripts/test.sh              # a pytorch.org LibTorch folder, build-libtorch/
#   TORCH=python scripts/test.sh                     # the LibTorch inside $PYTHON's torch (CUDA too), build-torch-python/
#   BUILD_DIR=/tmp/b scripts/test.sh -R parity       # extra arguments go to ctest
# Other settings:
#   TORCH_CUDA=1          with pypi:, link the wheel's CUDA libraries (torch-wheel.sh --cuda) instead
#                         of the CPU ones only (-DPATCHGCL_TORCH_CPU_ONLY=ON, the default)
#   CXX_STANDARD=17|20    C++ standard (default: the compiler's, at least 17; LibTorch >= 2.14 forces 20)
#   TARGETS="a b"         build only these targets (default: all)
#   PREFIX_PATH="a;b"     more CMake prefixes (Catch2, fmt... where they are not in /usr)
#   PATCHGCL_NO_INSTALL=1 install nothing (a machine without a package registry)
#   JOBS, BUILD_TYPE, CMAKE_ARGS as their names say. ccache is used when installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
torch="${TORCH:-debian}"
source "$root/scripts/lib/torch-cmake.sh"
torch_cmake "$torch"
args=("${torch_args[@]}")
default_build="$torch_build"
if [ -n "${CXX_STANDARD:-}" ]; then args+=("-DCMAKE_CXX_STANDARD=$CXX_STANDARD" -DCMAKE_CXX_EXTENSIONS=OFF); fi
args+=("${launcher[@]}")
build="${BUILD_DIR:-$default_build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "${args[@]}" ${CMAKE_ARGS:-}
targets=()
for t in ${TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$jobs" "${targets[@]}"
cd "$build"
ctest --output-on-failure -j "$jobs" "$@"
# With Debian's torch the README's command also tests the Python package (PATCHGCL_PYTHON=0: not).
if [ "$torch" = debian ] && [ "${PATCHGCL_PYTHON:-1}" = 1 ]; then bash "$root/scripts/test-python.sh" debian; fi

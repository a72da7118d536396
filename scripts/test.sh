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
args=()
case "$torch" in
  debian)
    default_build="$root/build" ;;
  pypi:*)
    version="${torch#pypi:}"
    if [ -n "${TORCH_CUDA:-}" ]; then
      torch_dir="$(bash "$root/scripts/lib/torch-wheel.sh" "$version" --cuda)"
      # At link time ld looks in the executable's RPATH (CMake puts the CUDA toolkit's lib/ there)
      # before libtorch_cuda.so's own: the toolkit's older NCCL would win (undefined ncclCommGrow...).
      args+=("-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$torch_dir/../../../../nvidia/nccl/lib")
      default_build="$root/build-torch-$version-cuda"
    else
      torch_dir="$(bash "$root/scripts/lib/torch-wheel.sh" "$version")"
      args+=(-DPATCHGCL_TORCH_CPU_ONLY=ON)
      default_build="$root/build-torch-$version"
    fi
    # The prefix and Caffe2_DIR too: TorchConfig.cmake looks for Caffe2 and its libraries in the
    # system paths first, and would take Debian's (libtorch-dev) over the wheel's.
    args+=("-DTorch_DIR=$torch_dir" "-DCaffe2_DIR=$torch_dir/../Caffe2") ;;
  python)
    # The torch of a Python environment as it is (pip's CUDA wheel, say): its own LibTorch and,
    # next to it, the nvidia-* wheels' libraries (NCCL first at link time, as for TORCH_CUDA=1).
    torch_dir="$("${PYTHON:-python3}" -c 'import os, torch; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')"
    nccl="$torch_dir/../../../../nvidia/nccl/lib"
    [ -d "$nccl" ] && args+=("-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$nccl")
    args+=("-DTorch_DIR=$torch_dir" "-DCaffe2_DIR=$torch_dir/../Caffe2")
    default_build="$root/build-torch-python" ;;
  /*)
    torch_dir="$torch/share/cmake/Torch"
    [ -e "$torch_dir/TorchConfig.cmake" ] || torch_dir="$torch"
    [ -e "$torch_dir/TorchConfig.cmake" ] || { echo "test.sh: no TorchConfig.cmake under TORCH=$torch" >&2; exit 1; }
    args+=("-DTorch_DIR=$torch_dir" "-DCaffe2_DIR=$torch_dir/../Caffe2")
    default_build="$root/build-libtorch" ;;
  *)
    echo "test.sh: TORCH must be debian, pypi:X.Y.Z, python or an absolute LibTorch folder, got '$torch'" >&2
    exit 1 ;;
esac
prefixes="${torch_dir:+$torch_dir/../../..}${PREFIX_PATH:+;$PREFIX_PATH}"
[ -n "$prefixes" ] && args+=("-DCMAKE_PREFIX_PATH=${prefixes#;}")
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

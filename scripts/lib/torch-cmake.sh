# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/demo.sh: the CMake arguments that build against a LibTorch.
#   torch_cmake debian | pypi:X.Y.Z | python | /abs/libtorch
# sets torch_args (array: -DTorch_DIR=..., -DCaffe2_DIR=..., -DCMAKE_PREFIX_PATH=...) and
# torch_build (the default build folder: build/, build-torch-X.Y.Z/, ...). Needs $root.
torch_cmake() {
  local torch="$1" torch_dir="" version="" nccl=""
  torch_args=()
  case "$torch" in
    debian)
      torch_build="$root/build" ;;
    pypi:*)
      version="${torch#pypi:}"
      if [ -n "${TORCH_CUDA:-}" ]; then
        torch_dir="$(bash "$root/scripts/lib/torch-wheel.sh" "$version" --cuda)"
        # At link time ld looks in the executable's RPATH (CMake puts the CUDA toolkit's lib/ there)
        # before libtorch_cuda.so's own: the toolkit's older NCCL would win (undefined ncclCommGrow...).
        torch_args+=("-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$torch_dir/../../../../nvidia/nccl/lib")
        torch_build="$root/build-torch-$version-cuda"
      else
        torch_dir="$(bash "$root/scripts/lib/torch-wheel.sh" "$version")"
        torch_args+=(-DPATCHGCL_TORCH_CPU_ONLY=ON)
        torch_build="$root/build-torch-$version"
      fi
      # The prefix and Caffe2_DIR too: TorchConfig.cmake looks for Caffe2 and its libraries in the
      # system paths first, and would take Debian's (libtorch-dev) over the wheel's.
      torch_args+=("-DTorch_DIR=$torch_dir" "-DCaffe2_DIR=$torch_dir/../Caffe2") ;;
    python)
      # The torch of a Python environment as it is (pip's CUDA wheel, say): its own LibTorch and,
      # next to it, the nvidia-* wheels' libraries (NCCL first at link time, as for TORCH_CUDA=1).
      torch_dir="$("${PYTHON:-python3}" -c 'import os, torch; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')"
      nccl="$torch_dir/../../../../nvidia/nccl/lib"
      [ -d "$nccl" ] && torch_args+=("-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$nccl")
      torch_args+=("-DTorch_DIR=$torch_dir" "-DCaffe2_DIR=$torch_dir/../Caffe2")
      torch_build="$root/build-torch-python" ;;
    /*)
      torch_dir="$torch/share/cmake/Torch"
      [ -e "$torch_dir/TorchConfig.cmake" ] || torch_dir="$torch"
      [ -e "$torch_dir/TorchConfig.cmake" ] || { echo "torch_cmake: no TorchConfig.cmake under TORCH=$torch" >&2; return 1; }
      torch_args+=("-DTorch_DIR=$torch_dir" "-DCaffe2_DIR=$torch_dir/../Caffe2")
      torch_build="$root/build-libtorch" ;;
    *)
      echo "torch_cmake: TORCH must be debian, pypi:X.Y.Z, python or an absolute LibTorch folder, got '$torch'" >&2
      return 1 ;;
  esac
  local prefixes="${torch_dir:+$torch_dir/../../..}${PREFIX_PATH:+;$PREFIX_PATH}"
  if [ -n "$prefixes" ]; then torch_args+=("-DCMAKE_PREFIX_PATH=${prefixes#;}"); fi
}

#!/usr/bin/env bash
# LibTorch from PyPI's torch wheel, to build against; never installed into a Python.
#   scripts/lib/torch-wheel.sh 2.13.0          # prints its Torch_DIR (.../torch/share/cmake/Torch)
#   scripts/lib/torch-wheel.sh 2.15.0 --cuda   # also cuSPARSELt, cuFile and NVSHMEM, for a CUDA build
#
# `pip download --no-deps` fetches the wheel for CPython 3.11 on manylinux x86_64 (whatever the
# local Python is) into $PATCHGCL_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/patchgcl)/wheels;
# torch/include, torch/lib and torch/share/cmake are unpacked into torch-X.Y.Z/, which repeated
# runs reuse. That folder is laid out like site-packages (torch/ next to nvidia/): the wheel's
# libraries find their CUDA dependencies through their RPATH, $ORIGIN/../../nvidia/<name>/lib.
# libtorch_cpu.so itself needs libcudart and libcupti (CUDA 13 for torch 2.10+): nvidia/cu13/lib
# gets links to the CUDA toolkit's (CUDA_HOME, else /usr/local/cuda-13*, /usr/local/cuda), so
# neither LD_LIBRARY_PATH nor an RPATH of ours is needed. Build CPU-only against it with
# -DPATCHGCL_TORCH_CPU_ONLY=ON (cmake/PatchGCLTorchCPU.cmake), for CUDA without it.
set -euo pipefail
version="${1:?usage: torch-wheel.sh X.Y.Z [--cuda]}"
cuda="${2:-}"
cache="${PATCHGCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchgcl}"
wheels="$cache/wheels"
dir="$cache/torch-$version"
python="${PYTHON:-python3}"
log() { echo "torch-wheel.sh: $*" >&2; }

pip_download() {  # pip download --no-deps of one requirement, for the wheel's own platform
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
    --abi cp311 --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheels" "$1" >&2
}
wheel_of() { ls "$wheels"/$1 2>/dev/null | head -n1 || true; }

mkdir -p "$wheels"
if [ ! -e "$dir/.unpacked" ]; then
  wheel="$(wheel_of "torch-$version-cp311-*.whl")"
  if [ -z "$wheel" ]; then
    log "downloading torch==$version (~0.5 GB) into $wheels"
    pip_download "torch==$version"
    wheel="$(wheel_of "torch-$version-cp311-*.whl")"
  fi
  [ -n "$wheel" ] || { log "no torch $version wheel for cp311 manylinux x86_64"; exit 1; }
  log "unpacking $(basename "$wheel") into $dir"
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  # libtorch_python.so is for Python extensions only.
  unzip -q -o "$wheel" 'torch/include/*' 'torch/lib/*' 'torch/share/cmake/*' '*.dist-info/METADATA' \
    -x 'torch/lib/libtorch_python.so' -d "$dir.partial"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
  touch "$dir/.unpacked"
fi

# The CUDA runtime libtorch_cpu.so was linked against, from the local CUDA toolkit.
cudart="$(readelf -d "$dir/torch/lib/libtorch_cpu.so" | sed -n 's/.*\[\(libcudart\.so\.[0-9]*\)\].*/\1/p')"
if [ -n "$cudart" ]; then
  major="${cudart##*.}"
  libdir="$dir/nvidia/cu$major/lib"
  toolkit=""
  for candidate in ${CUDA_HOME:-} /usr/local/cuda-"$major"* /usr/local/cuda; do
    if [ -e "$candidate/lib64/$cudart" ]; then toolkit="$candidate/lib64"; break; fi
  done
  if [ -z "$toolkit" ]; then
    log "torch $version's libtorch_cpu.so needs $cudart and libcupti.so.$major: no CUDA $major toolkit found" \
      "(set CUDA_HOME, or install it under /usr/local/cuda-$major.*)"
    exit 1
  fi
  mkdir -p "$libdir"
  for lib in "$toolkit"/lib*.so*; do
    name="$(basename "$lib")"
    [ -e "$libdir/$name" ] || ln -sfn "$lib" "$libdir/$name"
  done
  log "CUDA $major libraries: links in $libdir to $toolkit"
fi

if [ "$cuda" = "--cuda" ] && [ ! -e "$dir/.cuda-extras" ]; then
  # What libtorch_cuda.so needs beyond the toolkit, at the versions the torch wheel pins (NCCL too:
  # the CUDA toolkit's may be older; libtorch_cuda 2.15 needs symbols of NCCL 2.30).
  metadata="$(ls "$dir"/torch-*.dist-info/METADATA)"
  for pkg in nvidia-cusparselt nvidia-nvshmem nvidia-nccl nvidia-cufile; do
    req="$(sed -n "s/^Requires-Dist: \($pkg[-a-z0-9]*==[0-9.]*\).*/\1/p" "$metadata" | head -n1)"
    req="${req:-$pkg}"
    pattern="$(echo "${req%%==*}" | tr - _)-${req#*==}"
    [ "$req" = "$pkg" ] && pattern="${pkg//-/_}-"
    wheel="$(wheel_of "$pattern*.whl")"
    if [ -z "$wheel" ]; then
      log "downloading $req"
      if ! pip_download "$req"; then
        # A pinned version can be gone from the index (nvidia-nccl-cu13 2.30.7 for torch 2.15.0);
        # a newer one keeps the soname.
        log "$req is not available; taking the newest ${req%%==*}"
        pip_download "${req%%==*}"
        pattern="$(echo "${req%%==*}" | tr - _)-"
      fi
      wheel="$(wheel_of "$pattern*.whl")"
    fi
    [ -n "$wheel" ] || { log "could not fetch $req"; exit 1; }
    unzip -q -o "$wheel" 'nvidia/*' -d "$dir"
  done
  touch "$dir/.cuda-extras"
fi
echo "$dir/torch/share/cmake/Torch"

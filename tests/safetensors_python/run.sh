#!/usr/bin/env bash
# ctest safetensors_python: files written by the `safetensors` package are read by patchgcl and
# the reverse (cross_check.py says what is compared). The package is installed with pip into a venv
# of its own over Debian's python3-torch (~15 s once; cached in $PATCHGCL_CACHE/venv-safetensors).
# Exits 77 (skipped, saying why) where no such venv can be made (no network, no python3-venv).
#   run.sh PATCHGCL_TESTS_EXECUTABLE
set -euo pipefail
exe="${1:?usage: run.sh PATCHGCL_TESTS_EXECUTABLE}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! python="$(bash "$here/../../scripts/lib/venv-safetensors.sh")"; then
  echo "safetensors_python: SKIPPED (see above)"
  exit 77
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$python" -c 'import safetensors, torch; print("safetensors_python: safetensors", safetensors.__version__, "torch", torch.__version__)'
"$python" "$here/cross_check.py" write "$dir"
PATCHGCL_SAFETENSORS_DIR="$dir" "$exe" "[safetensors_python]"
"$python" "$here/cross_check.py" check "$dir"

#!/usr/bin/env bash
# ctest trainer_generator_python: the trainer's generator.safetensors loaded into the PyTorch
# ResnetGenerator of python/patchgcl_reference/cut_generator.py (CUT's names) translates an image as
# `patchgcl-trainer translate` does (check.py says what is compared). Runs with the venv of
# scripts/lib/venv-safetensors.sh (PyPI's safetensors over Debian's python3-torch); exits 77
# (skipped, saying why) where none can be made.
#   run.sh PATCHGCL_TRAINER WORK_DIR
set -euo pipefail
trainer="${1:?usage: run.sh PATCHGCL_TRAINER WORK_DIR}"
work="${2:?usage: run.sh PATCHGCL_TRAINER WORK_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! python="$(bash "$here/../../../../scripts/lib/venv-safetensors.sh")"; then
  echo "trainer_generator_python: SKIPPED (see above)"
  exit 77
fi
rm -rf "$work"
"$python" "$here/check.py" "$trainer" "$work"

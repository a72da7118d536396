#!/usr/bin/env bash
# The main job: install what is missing, build the example trainer, train it on the embedded
# shapes dataset (flat shapes -> striped shapes) for a few minutes on the CPU, score the result
# against the untrained generator, and print where the report is.
#
#   scripts/demo.sh                       # graph loss (PatchGCL), about 10 minutes on 2 cores
#   LOSS=patchnce scripts/demo.sh         # CUT's PatchNCE; LOSS=put for PUT
#   STEPS=3000 SIZE=64 scripts/demo.sh    # longer / larger
#   TORCH=debian scripts/demo.sh          # Debian's LibTorch 1.13 (TORCH as in scripts/test.sh)
#
# The LibTorch: by default PyPI's newest pinned wheel (scripts/lib/torch-versions.sh; MKL, and a
# newer ATen), which trains this trainer as fast as Debian's 1.13 or up to 2x faster, by CPU
# (docs/results/trainer-libtorch.md); where PyPI cannot be reached, Debian's. The first line says
# which one and why.
#
# Environment: LOSS (graph), STEPS, SIZE (image side), NGF, BLOCKS, SEED, THREADS, DEVICE (cpu),
#              TORCH (auto), BUILD_DIR (the LibTorch's, as scripts/test.sh), RUN_DIR (runs/demo-$LOSS),
#              JOBS (2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$(date +%s)

LOSS="${LOSS:-graph}"
STEPS="${STEPS:-1000}"
SIZE="${SIZE:-48}"
NGF="${NGF:-16}"
BLOCKS="${BLOCKS:-3}"
SEED="${SEED:-0}"
THREADS="${THREADS:-2}"
DEVICE="${DEVICE:-cpu}"
RUN_DIR="${RUN_DIR:-$root/runs/demo-$LOSS}"
JOBS="${JOBS:-2}"
# Idle OpenMP threads must not spin: on a shared 2-core machine spinning workers made every step ~30x slower.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

source "$root/scripts/lib/common.sh"  # the Debian packages, ccache
source "$root/scripts/lib/torch-versions.sh"
source "$root/scripts/lib/torch-cmake.sh"
TORCH="${TORCH:-auto}"
if [ "$TORCH" = auto ]; then
  if why="$(bash "$root/scripts/lib/torch-wheel.sh" "$PATCHGCL_TORCH_NEWEST" 2>&1 >/dev/null)"; then
    TORCH="pypi:$PATCHGCL_TORCH_NEWEST"
    echo "== LibTorch: PyPI's torch $PATCHGCL_TORCH_NEWEST, the faster one here (TORCH=debian for Debian's 1.13)"
  else
    TORCH=debian
    echo "== LibTorch: Debian's 1.13, as PyPI's torch $PATCHGCL_TORCH_NEWEST could not be fetched: $(tail -n1 <<<"$why")"
  fi
else
  echo "== LibTorch: $TORCH (TORCH)"
fi
torch_cmake "$TORCH"
BUILD_DIR="${BUILD_DIR:-$torch_build}"

echo "== building the trainer ($BUILD_DIR)"
cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${torch_args[@]}" "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" --target patchgcl-trainer -j "$JOBS"
trainer="$BUILD_DIR/examples/trainer/patchgcl-trainer"
built=$(date +%s)

common=(--data synthetic --synthetic-size "$SIZE" --ngf "$NGF" --n-blocks "$BLOCKS" --ndf "$NGF" --seed "$SEED")
rm -rf "$RUN_DIR" "$RUN_DIR-untrained"

echo "== untrained generator (same seed, step 0)"
"$trainer" --threads "$THREADS" --device "$DEVICE" train --run "$RUN_DIR-untrained" --steps 0 --loss "$LOSS" "${common[@]}" >/dev/null

echo "== training: loss $LOSS, $STEPS steps, ${SIZE}x${SIZE} images"
"$trainer" --threads "$THREADS" --device "$DEVICE" train --run "$RUN_DIR" --steps "$STEPS" --loss "$LOSS" "${common[@]}" \
  --log-every 25 --sample-every 250 --checkpoint-every 250
trained=$(date +%s)

echo "== evaluating on the paired test split (structure = shape IoU, texture = stripe energy / domain B's)"
"$trainer" evaluate --checkpoint "$RUN_DIR-untrained/ckpt.safetensors" --json "$RUN_DIR/scores-untrained.json" | sed 's/^/untrained: /'
"$trainer" evaluate --checkpoint "$RUN_DIR/ckpt.safetensors" --json "$RUN_DIR/scores.json" | sed "s/^/trained ($LOSS): /"

end=$(date +%s)
echo "== done in $((end - start)) s (build $((built - start)) s, training $((trained - built)) s)"
echo "report: $RUN_DIR/index.html  (samples in $RUN_DIR/samples/, log in $RUN_DIR/log.jsonl, scores in $RUN_DIR/scores*.json)"

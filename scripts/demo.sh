#!/usr/bin/env bash
# The main job: install what is missing, build the example trainer, train it on the embedded
# shapes dataset (flat shapes -> striped shapes) for a few minutes on the CPU, score the result
# against the untrained generator, and print where the report is.
#
#   scripts/demo.sh                       # graph loss (PatchGCL), about 10 minutes on 2 cores
#   LOSS=patchnce scripts/demo.sh         # CUT's PatchNCE; LOSS=put for PUT
#   STEPS=3000 SIZE=64 scripts/demo.sh    # longer / larger
#
# Environment: LOSS (graph), STEPS, SIZE (image side), NGF, BLOCKS, SEED, THREADS, DEVICE (cpu),
#              BUILD_DIR (build/), RUN_DIR (runs/demo-$LOSS), JOBS (2).
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
BUILD_DIR="${BUILD_DIR:-$root/build}"
RUN_DIR="${RUN_DIR:-$root/runs/demo-$LOSS}"
JOBS="${JOBS:-2}"
# Idle OpenMP threads must not spin: on a shared 2-core machine spinning workers made every step ~30x slower.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

bash "$root/scripts/lib/install-deps.sh"

echo "== building the trainer ($BUILD_DIR)"
cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
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

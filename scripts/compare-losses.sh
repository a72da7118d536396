#!/usr/bin/env bash
# Graph loss (PatchGCL) vs PatchNCE (CUT) vs PUT on one real image pair, single-image mode:
# trains every loss with every seed at the same settings, scores every kept checkpoint with the
# standard FID Inception (`evaluate --run`), translates the A image with each run's best
# checkpoint, and prints a Markdown table (per run and mean per loss). docs/trainer.md#comparison-on-a-real-pair
#
#   nice -n 5 scripts/compare-losses.sh              # ../shared/data/monet_etretat, 2 seeds, 1000 steps
#   SEEDS="0 1 2" STEPS=2000 scripts/compare-losses.sh
#
# Environment: DATA (../shared/data/monet_etretat beside the repository), OUT (runs/compare),
#   TRAINER (build/examples/trainer/patchgcl-trainer), FEATURES (OUT/inception_fid.safetensors, the
#   FID Inception's weights, written by scripts/export-inception.py with /usr/bin/python3 when missing),
#   LOSSES ("graph patchnce put"),
#   SEEDS ("0 1"), STEPS (1000), CROP (64), NGF (16), BLOCKS (3), NDF (16), CKPT_EVERY (100),
#   KEEP (5), PARALLEL (2: runs at a time, one thread each).
# Needs a built trainer (scripts/test.sh or scripts/demo.sh builds it); builds nothing itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$(date +%s)

DATA="${DATA:-$root/../shared/data/monet_etretat}"
OUT="${OUT:-$root/runs/compare}"
TRAINER="${TRAINER:-$root/build/examples/trainer/patchgcl-trainer}"
FEATURES="${FEATURES:-$OUT/inception_fid.safetensors}"
LOSSES="${LOSSES:-graph patchnce put}"
SEEDS="${SEEDS:-0 1}"
STEPS="${STEPS:-1000}"
CROP="${CROP:-64}"
NGF="${NGF:-16}"
BLOCKS="${BLOCKS:-3}"
NDF="${NDF:-16}"
CKPT_EVERY="${CKPT_EVERY:-100}"
KEEP="${KEEP:-5}"
PARALLEL="${PARALLEL:-2}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

[[ -x "$TRAINER" ]] || { echo "error: TRAINER must be the built patchgcl-trainer (got '$TRAINER', not an executable; build it with scripts/test.sh or scripts/demo.sh)" >&2; exit 1; }
[[ -d "$DATA/trainA" && -d "$DATA/trainB" ]] || { echo "error: DATA must be a folder with trainA/ and trainB/ (got '$DATA')" >&2; exit 1; }
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] || { echo "error: PARALLEL must be a number >= 1 (got '$PARALLEL')" >&2; exit 1; }
mkdir -p "$OUT"
if [[ ! -f "$FEATURES" ]]; then
  echo "== writing the FID Inception's weights to $FEATURES"
  /usr/bin/python3 "$root/scripts/export-inception.py" --out "$FEATURES" >/dev/null
fi

# One run: train, score every kept checkpoint, translate the A image with the best one.
one_run() {
  local loss=$1 seed=$2 run="$OUT/$1-seed$2"
  rm -rf "$run"
  "$TRAINER" --threads 1 train --run "$run" --data "$DATA" --single-image --crop-size "$CROP" \
    --ngf "$NGF" --n-blocks "$BLOCKS" --ndf "$NDF" --loss "$loss" --seed "$seed" --steps "$STEPS" \
    --log-every 50 --sample-every "$STEPS" --checkpoint-every "$CKPT_EVERY" --keep-checkpoints "$KEEP" \
    >"$run.train.log" 2>&1
  "$TRAINER" --threads 1 evaluate --run "$run" --features "$FEATURES" >"$run.eval.log" 2>&1
  "$TRAINER" --threads 1 translate --checkpoint "$run/best.safetensors" --input "$DATA/trainA" \
    --output "$run/translation" --size $((2 * CROP)) >>"$run.eval.log" 2>&1
  echo "   done: $loss seed $seed ($(date +%T))"
}

jobs=()
for seed in $SEEDS; do for loss in $LOSSES; do jobs+=("$loss $seed"); done; done
echo "== ${#jobs[@]} runs ($LOSSES x seeds $SEEDS), $STEPS steps, ${CROP}px crops, ngf $NGF, $BLOCKS blocks, ndf $NDF, $PARALLEL at a time"
for ((lane = 0; lane < PARALLEL; lane++)); do
  (
    for ((j = lane; j < ${#jobs[@]}; j += PARALLEL)); do
      # shellcheck disable=SC2086
      one_run ${jobs[j]}
    done
  ) &
done
failed=0
for ((lane = 0; lane < PARALLEL; lane++)); do wait -n || failed=1; done
[[ $failed -eq 0 ]] || { echo "error: a run failed; see $OUT/*.log" >&2; exit 1; }

# The table: best step, best FID and its KID, the last checkpoint's FID, training time.
python3 - "$OUT" $LOSSES -- $SEEDS <<'EOF'
import json, sys, statistics
out = sys.argv[1]
sep = sys.argv.index("--")
losses, seeds = sys.argv[2:sep], sys.argv[sep + 1:]
rows = {l: [] for l in losses}
print("| loss | seed | best step | best FID | KID at best | last FID | train s |")
print("|---|---|---|---|---|---|---|")
for loss in losses:
    for seed in seeds:
        run = f"{out}/{loss}-seed{seed}"
        s = json.load(open(f"{run}/checkpoint_scores.json"))
        table = s["checkpoints"] if "checkpoints" in s else s["rows"]
        best = min(table, key=lambda r: (r["fid"], r["step"]))
        last = max(table, key=lambda r: r["step"])
        secs = [json.loads(l) for l in open(f"{run}/log.jsonl")][-1]["elapsed_s"]
        rows[loss].append((best["fid"], best["kid"], last["fid"], secs))
        print(f"| {loss} | {seed} | {best['step']} | {best['fid']:.1f} | {best['kid']:.4f} | {last['fid']:.1f} | {secs:.0f} |")
print()
print("| loss | mean best FID | mean KID at best | mean last FID | mean train s |")
print("|---|---|---|---|---|")
for loss in losses:
    m = [statistics.mean(c) for c in zip(*rows[loss])]
    print(f"| {loss} | {m[0]:.1f} | {m[1]:.4f} | {m[2]:.1f} | {m[3]:.0f} |")
EOF
echo "== done in $(( $(date +%s) - start )) s; runs, scores (RUN/checkpoint_scores.*) and translations (RUN/translation/) in $OUT"

#!/usr/bin/env bash
# The contrastive losses side by side: every variant, every seed, on the embedded shapes dataset and
# on one real image pair, at the same sizes and step budget; every kept checkpoint scored with the
# standard FID Inception, the best (lowest FID) and the last one scored for structure. Prints the
# Markdown tables of docs/trainer.md#comparing-the-losses (mean +- sd over seeds, and per seed).
#
#   nice -n 19 scripts/compare-losses.sh                   # everything, resumable: run it again after a stop
#   DATASETS=monet VARIANTS="paper patchnce" SEEDS=0 STEPS=200 scripts/compare-losses.sh
#   TABLE_ONLY=1 scripts/compare-losses.sh                 # the tables of the runs finished so far
#
# Variants (docs/trainer.md#modes):
#   paper     the released PatchGCL command: --mode patchgcl (graph loss on VGG16 features, lambda 0.1)
#   graph     the graph loss on the generator's encoder features (lambda 1)
#   patchnce  CUT's PatchNCE;  put: PatchNCE with PUT's negative pruning
# Datasets:
#   shapes    the embedded dataset (--synthetic-size CROP); scored on a `synth` folder (seed 0):
#             FID/KID of testA's translations against testB, the shape IoU (`evaluate --checkpoint`)
#             and the edge structure (scripts/structure-score.py) of testA's translations
#   monet     ../shared/data/monet_etretat in single-image mode (CROP crops); FID/KID of
#             `evaluate --run`'s single-image crops, the edge structure of the whole painting's translation
# Environment (defaults): DATASETS (shapes monet), VARIANTS (paper graph patchnce put), SEEDS (0 1 2),
#   STEPS (600), CROP (128), NGF (16), BLOCKS (3), NDF (16), CKPT_EVERY (100), KEEP (6), PARALLEL (2:
#   runs at a time, one thread each), OUT (runs/compare), DATA (../shared/data/monet_etretat),
#   TRAINER (build/examples/trainer/patchgcl-trainer), FEATURES (OUT/inception_fid.pt, written by
#   scripts/export-inception.py when missing), VGG_WEIGHTS (the default of scripts/fetch-vgg16.py,
#   fetched when missing).
# A run folder holding compare.json is finished and skipped; any other is continued (train
# --auto-resume), so a stopped comparison is resumed by running the same command again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$(date +%s)

DATASETS="${DATASETS:-shapes monet}"
VARIANTS="${VARIANTS:-paper graph patchnce put}"
SEEDS="${SEEDS:-0 1 2}"
STEPS="${STEPS:-600}"
CROP="${CROP:-128}"
NGF="${NGF:-16}"
BLOCKS="${BLOCKS:-3}"
NDF="${NDF:-16}"
CKPT_EVERY="${CKPT_EVERY:-100}"
KEEP="${KEEP:-6}"
PARALLEL="${PARALLEL:-2}"
OUT="${OUT:-$root/runs/compare}"
DATA="${DATA:-$root/../shared/data/monet_etretat}"
TRAINER="${TRAINER:-$root/build/examples/trainer/patchgcl-trainer}"
FEATURES="${FEATURES:-$OUT/inception_fid.pt}"
PY=/usr/bin/python3 # Debian's: numpy and Pillow for the structure score
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

table() { "$PY" "$root/scripts/compare-table.py" "$OUT" --datasets $DATASETS --variants $VARIANTS --seeds $SEEDS; }
if [[ "${TABLE_ONLY:-0}" == 1 ]]; then
  table
  exit
fi

fail() {
  echo "error: $*" >&2
  exit 1
}
[[ -x "$TRAINER" ]] || fail "TRAINER must be the built patchgcl-trainer (got '$TRAINER', not an executable; build it with scripts/test.sh or scripts/demo.sh)"
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] || fail "PARALLEL must be a number >= 1 (got '$PARALLEL')"
for d in $DATASETS; do [[ "$d" == shapes || "$d" == monet ]] || fail "DATASETS holds '$d' (expected shapes and/or monet)"; done
for v in $VARIANTS; do [[ " paper graph patchnce put " == *" $v "* ]] || fail "VARIANTS holds '$v' (expected paper, graph, patchnce, put)"; done
if [[ " $DATASETS " == *" monet "* ]]; then
  [[ -d "$DATA/trainA" && -d "$DATA/trainB" ]] || fail "DATA must be a folder with trainA/ and trainB/ (got '$DATA')"
fi
mkdir -p "$OUT"
if [[ ! -f "$FEATURES" ]]; then
  echo "== writing the FID Inception network to $FEATURES"
  "$PY" "$root/scripts/export-inception.py" --out "$FEATURES"
fi
vgg=()
if [[ " $VARIANTS " == *" paper "* ]]; then
  VGG_WEIGHTS="${VGG_WEIGHTS:-$("$PY" "$root/scripts/fetch-vgg16.py")}"
  vgg=(--vgg-weights "$VGG_WEIGHTS")
fi
shapes="$OUT/shapes-data"
if [[ " $DATASETS " == *" shapes "* && ! -d "$shapes/testB" ]]; then
  "$TRAINER" synth --output "$shapes.tmp" --count 64 --size "$CROP" --seed 0 >/dev/null
  mv "$shapes.tmp" "$shapes"
fi

# One run: train (or continue), score every kept checkpoint, then the best and the last for structure.
one_run() {
  local dataset=$1 variant=$2 seed=$3
  local run="$OUT/$dataset/$variant-seed$seed" T=("$TRAINER" --threads 1)
  [[ -f "$run/compare.json" ]] && return
  mkdir -p "$OUT/$dataset"
  local data=(--synthetic-size "$CROP") score=(--data "$shapes") inputs="$shapes/testA" size=()
  if [[ $dataset == monet ]]; then
    data=(--data "$DATA" --single-image --crop-size "$CROP")
    score=()
    inputs="$DATA/trainA"
    size=(--size $((2 * CROP)))
  fi
  local objective=(--loss "$variant")
  [[ $variant == paper ]] && objective=(--mode patchgcl "${vgg[@]}")
  [[ $variant == graph ]] && objective=(--loss graph --features encoder)
  "${T[@]}" train --run "$run" --auto-resume "${data[@]}" "${objective[@]}" --ngf "$NGF" \
    --n-blocks "$BLOCKS" --ndf "$NDF" --seed "$seed" --steps "$STEPS" --log-every 25 --sample-every "$STEPS" \
    --checkpoint-every "$CKPT_EVERY" --keep-checkpoints "$KEEP" >>"$run.train.log" 2>&1
  "${T[@]}" evaluate --run "$run" "${score[@]}" --features "$FEATURES" >"$run.eval.log" 2>&1
  for which in best ckpt; do
    local ckpt="$run/$which.safetensors" translation="$run/translation-$which"
    rm -rf "$translation"
    "${T[@]}" translate --checkpoint "$ckpt" --input "$inputs" --output "$translation" "${size[@]}" >>"$run.eval.log" 2>&1
    "$PY" "$root/scripts/structure-score.py" --inputs "$inputs" --outputs "$translation" \
      --json "$run/structure-$which.json" >>"$run.eval.log"
    if [[ $dataset == shapes ]]; then
      "${T[@]}" evaluate --checkpoint "$ckpt" --count 64 --json "$run/shapes-$which.json" >>"$run.eval.log" 2>&1
    fi
  done
  echo "{\"finished\": \"$(date -u +%FT%TZ)\"}" >"$run/compare.json"
  echo "   done: $dataset $variant seed $seed ($(date +%T))"
}

jobs=()
for seed in $SEEDS; do for dataset in $DATASETS; do for variant in $VARIANTS; do
  jobs+=("$dataset $variant $seed")
done; done; done
echo "== ${#jobs[@]} runs ($DATASETS x $VARIANTS x seeds $SEEDS), $STEPS steps, ${CROP}px, ngf $NGF, $BLOCKS blocks, ndf $NDF, $PARALLEL at a time"
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
[[ $failed -eq 0 ]] || fail "a run failed; see $OUT/*/*.log"
table
echo "== done in $(($(date +%s) - start)) s; runs, scores and translations in $OUT"

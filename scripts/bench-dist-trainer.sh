#!/usr/bin/env bash
# Weak scaling of the distributed trainer (docs/distributed.md): the same `train` command at a fixed
# per-process --batch-size on 1 process, then on 2 (`launch --nproc-per-node 2`), one thread each,
# side by side in one run. Prints steps/s (each from log.jsonl's it_per_s, the warm-up window
# dropped), the 2-process efficiency and the gradient bytes all-reduced per step, with `uptime`;
# then, as a control, two independent 1-process runs side by side (what two busy processes get).
#   scripts/bench-dist-trainer.sh                         # build/, the tiny networks
#   TRAINER=build/examples/trainer/patchgcl-trainer STEPS=60 scripts/bench-dist-trainer.sh --ngf 16 --synthetic-size 64
# Extra arguments replace the defaults of the same options (--ngf 16 replaces --ngf 8); --no-overlap
# goes to the 2-process run only:
#   STEPS=300 scripts/bench-dist-trainer.sh --no-overlap   # all-reduce after backward, for comparison
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
trainer="${TRAINER:-$root/build/examples/trainer/patchgcl-trainer}"
steps="${STEPS:-40}"
every="${LOG_EVERY:-10}"
[ -x "$trainer" ] || { echo "bench-dist-trainer.sh: no trainer at $trainer (build the patchgcl-trainer target)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
defaults=(--synthetic-size 32 --synthetic-count 64 --ngf 8 --ndf 8 --n-blocks 1 --batch-size 1)
args=(train --steps "$steps" --log-every "$every" --sample-every 100000 --checkpoint-every 100000)
for ((i = 0; i < ${#defaults[@]}; i += 2)); do
  case " $* " in *" ${defaults[i]} "*) ;; *) args+=("${defaults[i]}" "${defaults[i + 1]}") ;; esac
done
# Options of distributed runs only (the trainer refuses them in a 1-process run, where they would
# do nothing): given to the 2-process run alone.
dist_only=()
for a in "$@"; do
  case "$a" in --no-overlap) dist_only+=("$a") ;; *) args+=("$a") ;; esac
done
# steps/s and bytes of the log's windows after the first (which holds the warm-up steps).
summary() {
  python3 - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][1:]
steps_per_s = sum(r["it_per_s"] for r in rows) / len(rows)
print(f'{steps_per_s:.3f} {int(rows[-1].get("bytes_all_reduced", 0))}')
EOF
}
echo "load before: $(uptime)"
OMP_NUM_THREADS=1 "$trainer" --threads 1 "${args[@]}" --run "$work/one" >"$work/one.out" 2>&1 \
  || { cat "$work/one.out"; exit 1; }
read -r one one_bytes < <(summary "$work/one/log.jsonl")
OMP_NUM_THREADS=1 "$trainer" launch --nproc-per-node 2 -- --threads 1 "${args[@]}" ${dist_only[@]+"${dist_only[@]}"} --run "$work/two" \
  >"$work/two.out" 2>&1 || { cat "$work/two.out"; exit 1; }
read -r two two_bytes < <(summary "$work/two/log.jsonl")
# Control: two independent 1-process runs at the same time, no communication. Their steps/s over
# the lone run's is what the machine allows two busy processes (shared cores, caches, memory
# bandwidth); the 2-process run can at best reach it, and what it lacks below it is the all-reduce.
pids=()
for i in a b; do
  OMP_NUM_THREADS=1 "$trainer" --threads 1 "${args[@]}" --run "$work/pair-$i" >"$work/pair-$i.out" 2>&1 &
  pids+=($!)
done
wait "${pids[0]}" || { cat "$work/pair-a.out"; exit 1; }
wait "${pids[1]}" || { cat "$work/pair-b.out"; exit 1; }
read -r pair_a _ < <(summary "$work/pair-a/log.jsonl")
read -r pair_b _ < <(summary "$work/pair-b/log.jsonl")
echo "load after:  $(uptime)"
echo "patchgcl-trainer ${args[*]}${dist_only[*]:+ (2 processes: ${dist_only[*]})}"
printf '1 process  : %8.3f steps/s\n' "$one"
printf '2 processes: %8.3f steps/s (each; global batch twice)  %d bytes all-reduced per step\n' "$two" "$two_bytes"
printf '2 x 1 process side by side, no communication: %8.3f steps/s (each)\n' "$(python3 -c "print(($pair_a + $pair_b) / 2)")"
python3 -c "print(f'weak-scaling efficiency: {100 * $two / $one:.1f} % (the control: {100 * ($pair_a + $pair_b) / 2 / $one:.1f} %)')"

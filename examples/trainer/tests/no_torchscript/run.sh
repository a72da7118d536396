#!/usr/bin/env bash
# ctest trainer_no_torchscript: no default path of the trainer calls LibTorch's TorchScript or pickle
# parsers. They are the loaders nobody can harden against a crafted file (docs/reliability.md); the
# trainer reads checkpoints, generator files, images and weights with its own checked readers, and
# only `evaluate --features-torchscript` (a trusted file, by its help) may call torch::jit::load.
#
# How: every TorchScript or pickle loader the binary imports from LibTorch or LibTorch's libraries
# export (nm -D: torch::jit::load, import_ir_module, load_*_module_*, pickle_load, unpickle, the
# Unpickler's methods, torch::pickle_load, serialize::InputArchive::load_from) is interposed by a
# library made here (LD_PRELOAD) whose definition of each prints its name and exits 86: a call from
# the trainer, or from LibTorch into its own loaders, ends there. A symbol search alone (nm) cannot
# tell which command reaches a call; this runs the commands. Under the interposer, each must succeed:
#   train (and train --resume), translate, explain, export, evaluate (the embedded dataset),
#   evaluate --data --features and evaluate --run --features (the native FID Inception, random weights)
# and, so that the test can fail, evaluate --features-torchscript must be stopped (exit 86, naming
# torch::jit::load). Exits 77 (skipped, saying why) without nm, c++filt or a C compiler.
#   run.sh PATCHGCL_TRAINER PATCHGCL_TRAINER_TESTS WORK_DIR
set -euo pipefail
trainer="${1:?usage: run.sh PATCHGCL_TRAINER PATCHGCL_TRAINER_TESTS WORK_DIR}"
tests="${2:?usage: run.sh PATCHGCL_TRAINER PATCHGCL_TRAINER_TESTS WORK_DIR}"
work="${3:?usage: run.sh PATCHGCL_TRAINER PATCHGCL_TRAINER_TESTS WORK_DIR}"
skip() {
  echo "trainer_no_torchscript: SKIPPED: $1"
  exit 77
}
fail() {
  echo "trainer_no_torchscript: FAILED: $1"
  exit 1
}
cc="${CC:-cc}"
for tool in nm c++filt "$cc"; do command -v "$tool" >/dev/null || skip "no $tool"; done
rm -rf "$work"
mkdir -p "$work"

# 1. The loaders: mangled and demangled name, one pair per line.
pattern='^torch::(jit::(load|import_ir_module|pickle_load|unpickle|Unpickler::)|pickle_load|serialize::InputArchive::load_from)'
{
  nm -D --undefined-only "$trainer" | awk '{print $NF}'
  for lib in $(ldd "$trainer" | awk '/libtorch/ {print $3}'); do
    nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ {print $3}'
  done
} | grep -E '^[A-Za-z0-9_]+$' | sort -u >"$work/symbols.txt"
paste "$work/symbols.txt" <(c++filt <"$work/symbols.txt") | awk -F'\t' -v p="$pattern" '$2 ~ p' >"$work/loaders.txt"
echo "trainer_no_torchscript: $(wc -l <"$work/loaders.txt") loaders interposed, those the trainer imports:"
nm -D --undefined-only "$trainer" | awk '{print $NF}' | grep -Fx -f <(cut -f1 "$work/loaders.txt") | c++filt | sed 's/^/  /'
grep -q $'\ttorch::jit::load(' "$work/loaders.txt" || fail "no torch::jit::load among LibTorch's symbols"

# 2. The interposer: each loader prints its name and exits 86.
{
  echo '#include <stdio.h>'
  echo '#include <unistd.h>'
  echo 'static void stop(const char* name) { fprintf(stderr, "TORCHSCRIPT_PARSER_CALLED: %s\n", name); fflush(stderr); _exit(86); }'
  while IFS=$'\t' read -r mangled demangled; do
    printf 'void %s(void) { stop("%s"); }\n' "$mangled" "$(printf '%s' "$demangled" | sed 's/\\/\\\\/g; s/"/\\"/g')"
  done <"$work/loaders.txt"
} >"$work/interposer.c"
"$cc" -shared -fPIC -o "$work/interposer.so" "$work/interposer.c" || fail "the interposer does not compile"

# 3. The inputs: a tiny dataset, random FID Inception weights, a TorchScript network (for the control).
"$trainer" synth --output "$work/synth" --count 3 --size 32 >/dev/null
mkdir -p "$work/data"
cp -r "$work/synth/testA" "$work/synth/testB" "$work/data/"
PATCHGCL_FILES_OUT="$work" "$tests" "[.no_torchscript_files]" >"$work/files.log" 2>&1 || { cat "$work/files.log"; fail "the test files"; }

# 4. The commands, each under the interposer.
n=0
run() {  # run EXPECTED_STATUS ARGS...: the trainer under the interposer
  local expected="$1" status=0
  shift
  n=$((n + 1))
  LD_PRELOAD="$work/interposer.so" "$trainer" --threads 1 "$@" >"$work/cmd$n.log" 2>&1 || status=$?
  if [ "$status" -ne "$expected" ]; then
    cat "$work/cmd$n.log"
    fail "exit $status (expected $expected): patchgcl-trainer $*"
  fi
  echo "trainer_no_torchscript: exit $status as expected: patchgcl-trainer $*"
}
tiny=(--synthetic-size 32 --synthetic-count 4 --ngf 4 --ndf 4 --n-blocks 1 --num-patches 16 --sample-every 100)
tiny+=(--steps 3 --checkpoint-every 1 --keep-checkpoints 3)
run 0 train --run "$work/run" "${tiny[@]}"
run 0 train --run "$work/run" "${tiny[@]}" --resume  # restores the whole state, then ends (step 3 of 3)
run 0 translate --checkpoint "$work/run" --input "$work/data/testA" --output "$work/translated"
run 0 explain --checkpoint "$work/run" --image "$work/data/testA/$(ls "$work/data/testA" | head -n 1)" --out "$work/explain" --k 2
run 0 export --checkpoint "$work/run" --output "$work/generator.safetensors"
run 0 evaluate --checkpoint "$work/run" --count 4
run 0 evaluate --checkpoint "$work/run" --data "$work/data" --features "$work/inception_random.safetensors" --kid-subsets 2
run 0 evaluate --run "$work/run" --data "$work/data" --features "$work/inception_random.safetensors" --kid-subsets 2
run 86 evaluate --folders "$work/data/testA" "$work/data/testB" --features-torchscript "$work/features.pt"
grep -q 'TORCHSCRIPT_PARSER_CALLED: torch::jit::load(' "$work/cmd$n.log" || fail "the control did not name torch::jit::load"
echo "trainer_no_torchscript: passed ($n commands; the control was stopped in torch::jit::load)"

#!/usr/bin/env bash
# Builds every libFuzzer target of fuzz/ (clang, ASan + UBSan) in build-fuzz/ and runs each for
# SECONDS (default 60) with its committed seed corpus and dictionary, JOBS targets at a time
# (default: the CPU count). New inputs go to build-fuzz/corpus/<target>/, crashes to
# build-fuzz/artifacts/<target>/. Exits non-zero if any target found something: turn each crash
# input into a regression test (docs/reliability.md).
#   scripts/fuzz.sh                 # every target, 60 s each (what .ci/run does)
#   scripts/fuzz.sh 1800 pgt_parse  # one target, 30 min
# Targets are registered in fuzz/CMakeLists.txt (one line each).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# ccache: paths relative to the checkout, so that a second clone (CI) reuses the first one's objects
# (RelWithDebInfo: the build folder is not hashed; debug info may name the first clone's paths).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-16G}"  # as scripts/lib/common.sh: room for every lane
seconds="${1:-60}"
shift || true
bash "$root/scripts/lib/install-deps.sh"
if ! command -v clang++ >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang
fi
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${JOBS:-$(nproc)}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root/fuzz" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${launcher[@]}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs" ${@:+--target "$@"}

# libFuzzer also checks each new input for leaks (detect_leaks=1); -malloc_limit_mb turns any
# single allocation above 1 GB (a size taken from a header unchecked) into a finding.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The targets run $jobs at a time (one core each): the same seconds per target, in less wall time.
run_target() {  # run_target NAME SEEDS DICT: exit status in $build/NAME.status
  local name="$1" seeds="$2" dict="$3"
  mkdir -p "$build/corpus/$name" "$build/artifacts/$name"
  local args=(-max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1
              -artifact_prefix="$build/artifacts/$name/")
  if [ -n "$dict" ]; then args+=(-dict="$dict"); fi
  # libFuzzer caps inputs at 1 MB unless told otherwise, and would cut a larger seed (a complete
  # trainer checkpoint: its contrastive heads alone are ~1 MB) short: allow the largest seed whole.
  local largest
  largest="$(find "$seeds" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -n 1)"
  if [ "${largest:-0}" -gt 1048576 ]; then args+=(-max_len="$largest"); fi
  local status=0
  "$build/$name" "${args[@]}" "$build/corpus/$name" "$seeds" >"$build/$name.log" 2>&1 || status=$?
  echo "$status" >"$build/$name.status"
}
names=()
while IFS=$'\t' read -r name seeds dict; do
  if (($#)) && [[ " $* " != *" $name "* ]]; then continue; fi
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "== fuzz $name for ${seconds}s (seeds: ${seeds#"$root"/})"
  rm -f "$build/$name.status"
  run_target "$name" "$seeds" "$dict" &
  names+=("$name")
done <"$build/fuzz_targets.txt"
wait
failed=()
summary=()
for name in "${names[@]}"; do
  echo "== fuzz $name: the end of its log"
  tail -n 12 "$build/$name.log"
  last="$(grep -E '^#[0-9]+' "$build/$name.log" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$name.log" | tail -n 1)"
  summary+=("$name: ${execs:-?} executions; last status: ${last:-none}")
  status="$(cat "$build/$name.status" 2>/dev/null || echo "no status")"
  if [ "$status" != 0 ]; then failed+=("$name (exit $status, see $build/$name.log and $build/artifacts/$name/)"); fi
done
echo "== fuzz summary"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
  exit 1
fi

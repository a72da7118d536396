#!/usr/bin/env bash
# C++ vs eager PyTorch in one command: builds the benchmarks, runs them (JSON), runs the eager
# timings of python/patchgcl_reference/reference.py on the same shapes (JSON), prints one table and
# redraws docs/benchmarks-time-vs-n.svg.
#   scripts/bench.sh                         # everything (C++ a few minutes, eager longer)
#   scripts/bench.sh '/paper'                # one regular expression filters both sides
#   THREADS=2 scripts/bench.sh               # intra-op threads on both sides (default 1)
#   NO_PYTHON=1 scripts/bench.sh             # C++ only
#   REPETITIONS=5 scripts/bench.sh '/paper'  # each benchmark 5 times on both sides, medians reported
# Results: $BUILD_DIR/bench/{cpp,py}.json and report.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
filter="${1:-.}"
reps="${REPETITIONS:-1}"
export PATCHGCL_BENCH_THREADS="${THREADS:-1}"
# LibTorch does not tell Debian's OpenBLAS (BLAS_INFO=generic) its thread count: set both.
export OPENBLAS_NUM_THREADS="$PATCHGCL_BENCH_THREADS"
python="${PYTHON:-/usr/bin/python3}"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" -DPATCHGCL_BUILD_BENCHMARKS=ON ${CMAKE_ARGS:-}
cmake --build "$build" -j "${JOBS:-2}" --target patchgcl_benchmarks
out="$build/bench"
mkdir -p "$out"
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/benchmarks/patchgcl_benchmarks" --benchmark_filter="$filter" \
  --benchmark_out="$out/cpp.json" --benchmark_out_format=json --benchmark_repetitions="$reps" ${BENCH_ARGS:-}
py_json=""
if [ -z "${NO_PYTHON:-}" ]; then
  PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" "$python" "$root/benchmarks/reference/bench_reference.py" --filter "$filter" --repetitions "$reps" --out "$out/py.json"
  py_json="$out/py.json"
fi
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$root/scripts/bench_report.py" "$out/cpp.json" $py_json \
  --svg "${SVG:-$root/docs/benchmarks-time-vs-n.svg}" --markdown "$out/report.md"

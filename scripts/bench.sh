#!/usr/bin/env bash
# C++ vs eager PyTorch vs the released implementations in one command: builds the benchmarks, runs
# the C++ suite (JSON), the eager timings of python/patchgcl_reference/reference.py (JSON) and the
# released code paths (PatchGCL's GNNLoss on DGL 1.1.3 + scipy, CUT's PatchNCELoss; JSON) on the
# same shapes, prints one table and redraws docs/benchmarks-time-vs-n.svg.
#   scripts/bench.sh                         # everything (C++ a few minutes, Python longer)
#   scripts/bench.sh '/paper'                # one regular expression filters all sides
#   THREADS=2 scripts/bench.sh               # intra-op threads on all sides (default 1)
#   NO_PYTHON=1 scripts/bench.sh             # C++ only
#   NO_RELEASED=1 scripts/bench.sh           # C++ and eager only (no DGL environment)
#   REPETITIONS=7 scripts/bench.sh '/paper'  # 7 rounds of C++, eager, released, interleaved; medians
#   TIME=cpu scripts/bench.sh '/paper'       # compare CPU time instead of wall time (1 thread, loaded machine)
#   NO_BUILD=1 scripts/bench.sh              # use the benchmark binary already in $BUILD_DIR
# Results: $BUILD_DIR/bench/{cpp,py,released}.<round>.json and report.md.
#
# The released column runs in a virtual environment made here ($BENCH_VENV, default
# $BUILD_DIR/bench/venv) with --system-site-packages, so that Debian's python3-torch (1.13.1),
# python3-numpy (1.x) and python3-scipy are used (a scipy from PyPI would pull numpy 2, which
# Debian's torch cannot load); only DGL 1.1.3 and its pure-Python dependencies come from PyPI.
# Debian's torch calls itself "1.13.0a0", which DGL refuses at import:
# benchmarks/reference/bench_released.py says how it handles that (in its own process only).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
filter="${1:-.}"
reps="${REPETITIONS:-1}"
export PATCHGCL_BENCH_THREADS="${THREADS:-1}"
# LibTorch does not tell Debian's OpenBLAS (BLAS_INFO=generic) its thread count: the C++ side sets
# it through patchgcl::set_num_threads (include/patchgcl/threads.hpp); the environment variable
# covers the Python sides, whose torch has the same blind spot.
export OPENBLAS_NUM_THREADS="$PATCHGCL_BENCH_THREADS"
# Idle OpenMP workers sleep instead of spinning (spinning hurts on a shared or small machine).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
python="${PYTHON:-/usr/bin/python3}"
export PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}"  # python/patchgcl_reference

debs=""
if [ -z "${NO_PYTHON:-}" ]; then
  debs="python3-torch python3-numpy python3-scipy"
  [ -n "${NO_RELEASED:-}" ] || debs="$debs python3-venv python3-pip"
fi
PATCHGCL_EXTRA_DEBS="$debs" bash "$root/scripts/lib/install-deps.sh"

if [ -z "${NO_BUILD:-}" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" -DPATCHGCL_BUILD_BENCHMARKS=ON ${CMAKE_ARGS:-}
  cmake --build "$build" -j "${JOBS:-2}" --target patchgcl_benchmarks
fi
out="$build/bench"
mkdir -p "$out"
rm -f "$out"/cpp.*.json "$out"/py.*.json "$out"/released.*.json

venv="${BENCH_VENV:-$out/venv}"
if [ -z "${NO_PYTHON:-}" ] && [ -z "${NO_RELEASED:-}" ]; then
  check='import bench_released, dgl, scipy, numpy; assert dgl.__version__ == "1.1.3" and numpy.__version__ < "2"'
  if ! (cd "$root/benchmarks/reference" && "$venv/bin/python" -c "$check") >/dev/null 2>&1; then
    echo "bench: making $venv (DGL 1.1.3 over Debian's torch, numpy, scipy)"
    "$python" -m venv --system-site-packages "$venv"
    # numpy/scipy pinned below 2 / 1.12 so that pip keeps Debian's (it does, as they satisfy them).
    "$venv/bin/pip" install -q --disable-pip-version-check dgl==1.1.3 packaging pyyaml "numpy<2" "scipy<1.12"
    (cd "$root/benchmarks/reference" && "$venv/bin/python" -c "$check")
  fi
fi

echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
cpp_json=() py_json=() rel_json=()
for ((r = 1; r <= reps; r++)); do
  [ "$reps" -eq 1 ] || echo "== round $r of $reps, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$build/benchmarks/patchgcl_benchmarks" --benchmark_filter="$filter" \
    --benchmark_out="$out/cpp.$r.json" --benchmark_out_format=json ${BENCH_ARGS:-}
  cpp_json+=("$out/cpp.$r.json")
  if [ -z "${NO_PYTHON:-}" ]; then
    "$python" "$root/benchmarks/reference/bench_reference.py" --filter "$filter" --out "$out/py.$r.json"
    py_json+=("$out/py.$r.json")
    if [ -z "${NO_RELEASED:-}" ]; then
      "$venv/bin/python" "$root/benchmarks/reference/bench_released.py" --filter "$filter" --out "$out/released.$r.json"
      rel_json+=("$out/released.$r.json")
    fi
  fi
done
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
join() { local IFS=,; echo "$*"; }
args=("$(join "${cpp_json[@]}")")
((${#py_json[@]})) && args+=("$(join "${py_json[@]}")")
((${#rel_json[@]})) && args+=(--released "$(join "${rel_json[@]}")")
"$python" "$root/scripts/lib/bench-report.py" "${args[@]}" --time "${TIME:-wall}" \
  --svg "${SVG:-$root/docs/benchmarks-time-vs-n.svg}" --markdown "$out/report.md"

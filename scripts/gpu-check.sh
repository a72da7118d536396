#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and the CUDA 13 toolkit (/usr/local/cuda-13*):
#   scripts/gpu-check.sh                         # the newest pinned torch wheel (scripts/lib/torch-versions.sh), CUDA libraries linked
#   TORCH_VERSION=2.13.0 scripts/gpu-check.sh
#   TORCH=python PATCHGCL_NO_INSTALL=1 PREFIX_PATH=/deps/usr scripts/gpu-check.sh
#                                                # the CUDA torch already in $PYTHON (no download,
#                                                # no apt: Catch2, fmt, Google Benchmark under PREFIX_PATH)
#   CPU_CTEST_ARGS="-R parity" scripts/gpu-check.sh   # ctest arguments of the CPU suite (default: all)
# 0. (first) where $PYTHON's torch sees a GPU: builds the Python package against it, runs python/tests
#    (its CUDA tests: parity with the CPU, no host sync under CUDA's sync-debug mode, a forward +
#    backward captured in a CUDA graph) and python/benchmarks/bench_cuda_graph.py (kernels per
#    forward+backward, eager against graph replay, paper setting);
# 1. builds tests, trainer and benchmarks against the PyPI wheel's CUDA LibTorch
#    (scripts/test.sh with TORCH=pypi:X TORCH_CUDA=1, build-torch-X-cuda/);
# 2. runs the whole suite on the CPU of that build (ctest);
# 3. runs the device-aware tests on CUDA: PATCHGCL_TEST_DEVICE=cuda, reference parity in float64
#    to 1e-9 against the same fixtures, and [sync], the host-synchronisation count of each loss's
#    forward + backward (must be 0 with the finite check off);
# 4. runs the paper-setting benchmarks (--benchmark_filter='/paper/real_time$') on CPU and on CUDA;
# 5. prints one summary: GPU, steps with pass/fail and times, sync counts, benchmark times.
# Exit status 0 when every step passed on a GPU; 1 when a step failed; 2 when no GPU was found
# (the CUDA steps are then reported as SKIPPED, after everything that runs without one).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/torch-versions.sh"
version="${TORCH_VERSION:-$PATCHGCL_TORCH_NEWEST}"
torch="${TORCH:-pypi:$version}"
if [ "$torch" = python ]; then
  build="${BUILD_DIR:-$root/build-torch-python}"
else
  build="${BUILD_DIR:-$root/build-torch-$version-cuda}"
fi
out="$build/gpu-check"
python="${PYTHON:-python3}"
mkdir -p "$out"

gpu="none"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n1)"
fi
echo "gpu-check: GPU: $gpu"
have_gpu=0
[ "$gpu" != none ] && have_gpu=1

steps=()   # "name|status|seconds"
failed=0
step() {  # step NAME LOGFILE COMMAND...: runs it, records PASS / FAIL / SKIPPED (exit 77) and its time
  local name="$1" logfile="$2"; shift 2
  local t0=$SECONDS rc=0
  echo "gpu-check: == $name (log: $logfile)"
  "$@" >"$logfile" 2>&1 || rc=$?
  local status=PASS
  if [ "$rc" -eq 77 ] && [ "$have_gpu" -eq 0 ]; then status=SKIPPED; elif [ "$rc" -ne 0 ]; then status="FAIL (exit $rc)"; failed=1; fi
  steps+=("$name|$status|$((SECONDS - t0))")
  echo "gpu-check:    $status, $((SECONDS - t0)) s"
  [ "$status" = PASS ] || tail -n 15 "$logfile" | sed 's/^/    /'
}

# 0: the Python package on $PYTHON's torch, where that torch sees a GPU (first: the quickest
# to build, so that a short lease still gets its numbers).
if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  python_package() {
    (cd "$root" && MAX_JOBS="${JOBS:-$(nproc)}" "$python" -m pip install -q --no-build-isolation --no-deps . &&
      "$python" -m pytest -q -rs -p no:cacheprovider python/tests)
  }
  step "Python package on CUDA (pytest python/tests)" "$out/python-tests.log" python_package
  step "Python: CUDA graph replay against eager (paper setting)" "$out/cuda-graph.log" \
    "$python" "$root/python/benchmarks/bench_cuda_graph.py" --json "$out/cuda-graph.json"
else
  steps+=("Python package on CUDA|SKIPPED ($python's torch has no CUDA device)|0")
fi

# 1 + 2: the build, and the suite on the CPU of the CUDA build.
step "build (torch $torch, CUDA) + suite on CPU" "$out/build-and-cpu-suite.log" \
  env TORCH="$torch" TORCH_CUDA=1 BUILD_DIR="$build" PATCHGCL_PYTHON=0 bash "$root/scripts/test.sh" ${CPU_CTEST_ARGS:-}

tests="$build/tests/patchgcl_tests"
bench="$build/benchmarks/patchgcl_benchmarks"

# 3: the device-aware tests on CUDA (the executable exits 77, SKIPPED, without a CUDA device).
step "tests on CUDA (parity float64 to 1e-9, [sync] and the rest)" "$out/cuda-tests.log" \
  env PATCHGCL_TEST_DEVICE=cuda "$tests"
step "[sync]: host syncs in each loss's forward+backward" "$out/cuda-sync.log" \
  env PATCHGCL_TEST_DEVICE=cuda "$tests" "[sync]" --success
syncs="$(grep -o 'host syncs in forward+backward of .*' "$out/cuda-sync.log" 2>/dev/null | sed 's/host syncs in forward+backward of //' | paste -sd ';' -)"

# 4: the paper-setting benchmarks on both devices (names: loss/pass/paper/real_time). A filter
# that matches nothing exits 0 in Google Benchmark, so the report must hold benchmarks.
bench_paper() {  # bench_paper DEVICE
  local json="$out/bench-$1.json" rc=0
  rm -f "$json"
  "$bench" --device "$1" --benchmark_filter='/paper/real_time$' --benchmark_out="$json" --benchmark_out_format=json || rc=$?
  [ "$rc" -eq 0 ] || return "$rc"
  "$python" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("benchmarks") else 1)' "$json" ||
    { echo "gpu-check: no paper-setting benchmark ran (empty $json)"; return 1; }
}
for device in cpu cuda; do
  step "benchmarks /paper/ on $device" "$out/bench-$device.log" bench_paper "$device"
done

# 5: the summary.
echo
echo "================================ gpu-check summary ================================"
echo "GPU:            $gpu"
echo "LibTorch:       $torch (CUDA libraries), build $build"
printf '%-62s %-16s %s\n' "step" "result" "time"
for s in "${steps[@]}"; do
  IFS='|' read -r name status seconds <<<"$s"
  printf '%-62s %-16s %s s\n' "$name" "$status" "$seconds"
done
echo "host syncs:     ${syncs:-not measured (no CUDA run)}"
[ -s "$out/cuda-graph.log" ] && sed -n '/^loss /,$p' "$out/cuda-graph.log"
"$python" - "$out/bench-cpu.json" "$out/bench-cuda.json" <<'PY' || true
import json, os, sys
def load(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return {}
    with open(path) as f:
        data = json.load(f)
    return {b["name"]: b["real_time"] for b in data.get("benchmarks", []) if b.get("run_type") != "aggregate"}
cpu, cuda = load(sys.argv[1]), load(sys.argv[2])
if not cpu and not cuda:
    print("benchmarks:     none ran"); sys.exit()
print(f"{'benchmark (ms per call)':40} {'CPU':>10} {'CUDA':>10} {'CPU/CUDA':>9}")
for name in sorted(set(cpu) | set(cuda)):
    c, g = cpu.get(name), cuda.get(name)
    ratio = f"{c / g:9.1f}" if c and g else f"{'-':>9}"
    fmt = lambda v: f"{v:10.2f}" if v is not None else f"{'-':>10}"
    print(f"{name:40} {fmt(c)} {fmt(g)} {ratio}")
PY
if [ "$failed" -ne 0 ]; then
  echo "RESULT:         FAIL"
  [ "$have_gpu" -eq 1 ] || echo "                (and no GPU was found: the CUDA steps were skipped)"
  exit 1
fi
if [ "$have_gpu" -eq 0 ]; then
  echo "RESULT:         NO GPU FOUND (nvidia-smi lists none): everything that runs without one passed;"
  echo "                the CUDA steps were SKIPPED. Run this on a machine with a GPU."
  exit 2
fi
echo "RESULT:         PASS"

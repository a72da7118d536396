#!/usr/bin/env bash
# The library's tests (ctest -L library) under every OpenBLAS kernel set this CPU can run, at 1 and
# 2 threads. Floats that two code paths compute are compared with tolerances in the tests; this
# checks that they hold whichever kernels round the matrix products (OPENBLAS_CORETYPE picks them
# in Debian's OpenBLAS, which is built for every x86 core). Needs a build of scripts/test.sh with
# Debian's LibTorch (BUILD_DIR, default build/); takes about 10 s per setting.
#   scripts/test-blas-cores.sh                 # every kernel set the CPU has, 1 and 2 threads
#   CORES="Haswell SkylakeX" scripts/test-blas-cores.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
[ -e "$build/CTestTestfile.cmake" ] || { echo "test-blas-cores.sh: no build in $build (run scripts/test.sh first)" >&2; exit 1; }
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
if [ -z "${CORES:-}" ]; then
  # Prescott: OpenBLAS's generic SSE3 kernels (what it runs on an x86 CPU it does not know).
  CORES="Prescott"
  if has avx2 fma; then CORES+=" Haswell Zen"; fi
  if has avx512f avx512bw avx512dq avx512vl; then CORES+=" SkylakeX"; fi
  if has avx512f avx512bw avx512dq avx512vl avx512_bf16; then CORES+=" Cooperlake"; fi
fi
failed=()
for core in $CORES; do
  # What OpenBLAS really runs: it names its core when OPENBLAS_VERBOSE=2.
  # (Catch2's --list-tags exits with the number of tags.)
  ran="$({ OPENBLAS_CORETYPE="$core" OPENBLAS_VERBOSE=2 "$build/tests/patchgcl_tests" --list-tags 2>&1 || true; } |
         sed -n 's/^Core: *//p' | head -n1)"
  for threads in 1 2; do
    echo "== OPENBLAS_CORETYPE=$core (OpenBLAS runs: ${ran:-not reported}), $threads thread(s)"
    log="$build/blas-cores-$core-$threads.log"
    if (cd "$build" && OPENBLAS_CORETYPE="$core" OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" \
        ctest -L library --output-on-failure -j "${JOBS:-$(nproc)}" >"$log" 2>&1); then
      grep -E 'tests passed' "$log" || true
    else
      cat "$log"
      failed+=("$core/$threads")
    fi
  done
done
if ((${#failed[@]})); then
  echo "test-blas-cores.sh: FAILED under ${failed[*]}" >&2
  exit 1
fi
echo "test-blas-cores.sh: the library tests passed under $CORES, 1 and 2 threads"

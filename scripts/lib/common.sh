# Sourced by the entry scripts that configure a CMake build (test.sh, sanitize.sh, demo.sh): the
# checkout's root, the Debian packages, and ccache set up so that a second clone (CI) reuses the
# first one's objects (paths relative to the checkout, LibTorch's precompiled header cacheable).
# Sets: root, jobs (JOBS or the CPU count), launcher (the CMake arguments that enable ccache).
# shellcheck shell=bash
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
# Room for every lane's objects: one LibTorch precompiled header is ~600 MB before compression, and
# each lane has three; ccache's default 5 GB evicts one lane's objects while building the next.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-16G}"
[ "${PATCHGCL_NO_INSTALL:-0}" = 1 ] || bash "$root/scripts/lib/install-deps.sh"
jobs="${JOBS:-$(nproc)}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

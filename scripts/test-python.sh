#!/usr/bin/env bash
# The Python package's lane: installs what is missing, makes a venv, builds the wheel with
# `pip wheel --no-build-isolation .` against that venv's torch, installs it there and into a fresh
# venv with the same torch (it must import there), runs pytest on python/tests.
#   scripts/test-python.sh debian          # Debian's python3-torch 1.13, venv --system-site-packages
#   scripts/test-python.sh pypi:2.15.0     # torch==2.15.0 from PyPI in its own venv
# Venvs are cached under $PATCHGCL_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/patchgcl): venv-debian,
# venv-torch-X.Y.Z (torch with its nvidia-* wheels, ~3 GB; the torch wheel of scripts/torch-wheel.sh
# is reused when it is there). The build goes to build-python/torch-<version>/; ccache is used when
# installed. MAX_JOBS (default 1) compile jobs. Extra arguments go to pytest. PATCHGCL_VENV_ONLY=1
# makes the venv and stops.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lane="${1:?usage: test-python.sh debian|pypi:X.Y.Z [pytest arguments]}"
shift
cache="${PATCHGCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchgcl}"
log() { echo "test-python.sh: $*" >&2; }
t0=$SECONDS

# Debian packages of the lane (python3-dev: Python.h; pybind11-dev: torch/extension.h includes it).
apt_packages=(python3-dev python3-venv pybind11-dev ninja-build)
[ "$lane" = debian ] && apt_packages+=(python3-torch python3-numpy python3-pytest)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  for attempt in 1 2 3 4 5 6; do  # another apt may hold the lock for a while
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; then break; fi
    [ "$attempt" = 6 ] && exit 1
    sleep 10
  done
fi

case "$lane" in
  debian)
    venv="$cache/venv-debian"
    if [ ! -e "$venv/.ready" ]; then
      rm -rf "$venv"
      /usr/bin/python3 -m venv --system-site-packages "$venv"
      touch "$venv/.ready"
    fi ;;
  pypi:*)
    version="${lane#pypi:}"
    venv="$cache/venv-torch-$version"
    if [ ! -e "$venv/.ready" ]; then
      log "installing torch==$version from PyPI into $venv"
      rm -rf "$venv"
      /usr/bin/python3 -m venv "$venv"
      links=()
      [ -d "$cache/wheels" ] && links=(--find-links "$cache/wheels")
      "$venv/bin/pip" install -q "${links[@]}" "torch==$version" numpy pytest setuptools wheel
      touch "$venv/.ready"
    fi ;;
  *) log "the lane must be debian or pypi:X.Y.Z, got '$lane'"; exit 1 ;;
esac
python="$venv/bin/python"
log "venv ready after $((SECONDS - t0)) s: $("$python" -c 'import torch; print("torch", torch.__version__)')"
# PATCHGCL_VENV_ONLY=1: make the venv and stop (.ci/run downloads it while other lanes compile).
[ "${PATCHGCL_VENV_ONLY:-0}" = 1 ] && exit 0

if [ -d /usr/lib/ccache ]; then
  export PATH="/usr/lib/ccache:$PATH" CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-16G}"
fi
cd "$root"
# The wheel users get from `pip wheel --no-build-isolation .`, installed into the lane's venv (the
# suite imports it) and into a fresh venv that has the same torch and nothing else of the lane.
torch_version="$("$python" -c 'import torch; print(torch.__version__)')"
wheels="build-python/wheel-$torch_version"
rm -rf "$wheels"
MAX_JOBS="${MAX_JOBS:-1}" "$python" -m pip wheel -q --no-build-isolation --no-deps -w "$wheels" . >&2
wheel="$(ls "$wheels"/patchgcl-*.whl)"
"$python" -m pip install -q --force-reinstall --no-deps "$wheel" >&2
fresh="build-python/fresh-venv-$torch_version"
rm -rf "$fresh"
if [ "$lane" = debian ]; then
  /usr/bin/python3 -m venv --system-site-packages "$fresh"
else  # the lane venv's torch (and numpy) through a .pth, rather than a second 3 GB install
  /usr/bin/python3 -m venv "$fresh"
  torch_site="$("$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')"
  fresh_site="$("$fresh/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$torch_site" >"$fresh_site/lane-torch.pth"
fi
"$fresh/bin/python" -m pip install -q --no-deps --ignore-installed "$wheel" >&2  # not the lane's, seen through the .pth
(cd / && "$root/$fresh/bin/python" -c 'import patchgcl, torch, sys
assert patchgcl.__file__.startswith(sys.prefix), patchgcl.__file__
loss = patchgcl.PatchNCELoss([4], num_patches=8, nc=8)([torch.randn(1, 4, 4, 4)], [torch.randn(1, 4, 4, 4)])
print("test-python.sh: the wheel", sys.argv[1], "imports in a fresh venv (torch", torch.__version__ + "), loss", float(loss.detach()))' "$(basename "$wheel")") >&2
log "built the wheel and installed it after $((SECONDS - t0)) s"

# From the repository root: python/ is not on the path, so the installed package is imported.
rc=0
"$python" -m pytest -q -rs -p no:cacheprovider python/tests "$@" || rc=$?
[ "$rc" = 5 ] && log "pytest collected no tests"
log "lane $lane: exit $rc after $((SECONDS - t0)) s"
exit "$rc"

#!/usr/bin/env bash
# Prints the python of a venv with PyPI's `safetensors` over Debian's python3-torch (system site
# packages), made once (~15 s, pip) and cached in $PATCHGCL_CACHE/venv-safetensors; exits 1, saying
# why on stderr, where none can be made (no network, no python3-venv, no python3-torch).
# Used by ctests safetensors_python and trainer_generator_python.
set -euo pipefail
cache="${PATCHGCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchgcl}"
venv="$cache/venv-safetensors"
if [ ! -e "$venv/.ready" ]; then
  rm -rf "$venv"
  if ! { /usr/bin/python3 -c "import torch" 2>/dev/null &&
         /usr/bin/python3 -m venv --system-site-packages "$venv" >&2 &&
         "$venv/bin/pip" install -q safetensors >&2; }; then
    echo "no venv with Debian's python3-torch and PyPI's safetensors could be made in $venv" >&2
    exit 1
  fi
  touch "$venv/.ready"
fi
echo "$venv/bin/python"

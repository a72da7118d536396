#!/usr/bin/env bash
# The code follows its formatters: clang-format (.clang-format) for the C++ files, ruff
# (pyproject.toml's [tool.ruff]) for the Python files. Seconds; the CI's `format` lane.
#   scripts/check-format.sh          # check: lists what differs, exits 1 if anything does
#   scripts/check-format.sh --fix    # rewrite the files in place
# clang-format is Debian's (14); ruff is PyPI's, pinned, in a venv cached in $PATCHGCL_CACHE/venv-ruff
# (Debian 12 has no ruff package).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUFF_VERSION=0.17.6
fix=0
[ "${1:-}" = --fix ] && fix=1

command -v clang-format >/dev/null || PATCHGCL_EXTRA_DEBS="clang-format" bash scripts/lib/install-deps.sh
cache="${PATCHGCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchgcl}"
venv="$cache/venv-ruff"
if [ ! -e "$venv/.ready-$RUFF_VERSION" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "ruff==$RUFF_VERSION" >&2
  touch "$venv/.ready-$RUFF_VERSION"
fi
ruff="$venv/bin/ruff"

mapfile -t cxx < <(git ls-files '*.hpp' '*.cpp' '*.h' '*.cc')
mapfile -t py < <(git ls-files '*.py')
status=0
if [ "$fix" = 1 ]; then
  clang-format -i "${cxx[@]}"
  "$ruff" check --fix --quiet "${py[@]}" || status=1
  "$ruff" format --quiet "${py[@]}"
else
  if ! out="$(clang-format --dry-run --Werror "${cxx[@]}" 2>&1)"; then
    grep -E '^[^ ].*error:' <<<"$out" | sed 's/:[0-9]*:[0-9]*: error:.*//' | sort -u | sed 's/^/clang-format would change /'
    status=1
  fi
  "$ruff" check --quiet "${py[@]}" || status=1
  "$ruff" format --check --quiet "${py[@]}" || status=1
fi
if [ "$status" != 0 ]; then
  echo "check-format: the files above differ from their formatters; scripts/check-format.sh --fix rewrites them" >&2
fi
echo "check-format: ${#cxx[@]} C++ and ${#py[@]} Python files"
exit "$status"

#!/usr/bin/env bash
# ctest trainer_checkpoint_python: a checkpoint the trainer wrote, read by the `safetensors` Python
# package (safe_open, load_file) in the venv that ctest safetensors_python makes
# (tests/safetensors_python/run.sh; $PATCHGCL_CACHE/venv-safetensors). ~5 s. Exits 77 (skipped,
# saying why) where that venv does not exist yet.
#   checkpoint_python.sh PATCHGCL_TRAINER
set -euo pipefail
trainer="${1:?usage: checkpoint_python.sh PATCHGCL_TRAINER}"
cache="${PATCHGCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchgcl}"
venv="$cache/venv-safetensors"
if [ ! -e "$venv/.ready" ]; then
  echo "trainer_checkpoint_python: SKIPPED: no venv with the safetensors package in $venv (ctest -R safetensors_python makes it)"
  exit 77
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
OMP_NUM_THREADS=1 "$trainer" --threads 1 train --run "$dir/run" --ngf 4 --ndf 4 --n-blocks 1 --num-patches 16 \
  --steps 2 --log-every 1 --synthetic-size 24 --synthetic-count 4 >"$dir/train.log" 2>&1 || { cat "$dir/train.log"; exit 1; }
"$venv/bin/python" - "$dir/run/ckpt.safetensors" <<'PY'
import sys
import torch
from safetensors import safe_open
from safetensors.torch import load_file

path = sys.argv[1]
with safe_open(path, "pt") as f:
    meta = f.metadata()
tensors = load_file(path)
expected = {"format", "config", "step", "world_size", "log_window", "data_checksum", "header_checksum"}
assert set(meta) == expected, sorted(meta)
assert meta["format"] == "patchgcl-trainer-safetensors-1", meta["format"]
assert meta["step"] == "2" and meta["world_size"] == "1", (meta["step"], meta["world_size"])
assert "ngf=4\n" in meta["config"] and "steps=2\n" in meta["config"], meta["config"]
assert len(meta["log_window"].split(",")) == 6, meta["log_window"]
for key in ("data_checksum", "header_checksum"):
    assert len(meta[key]) == 16 and all(c in "0123456789abcdef" for c in meta[key]), meta[key]
groups = {}
for name, t in tensors.items():
    group = name.split(".")[0]
    assert group in ("G", "D", "F", "opt_G", "opt_D", "opt_F"), name
    groups[group] = groups.get(group, 0) + 1
    if name.endswith(".step"):
        assert t.dtype == torch.int64 and t.dim() == 0 and int(t) == 2, (name, t)
    else:
        assert t.dtype == torch.float32 and bool(torch.isfinite(t).all()), name
for group in ("G", "D", "F", "opt_G", "opt_D", "opt_F"):
    assert groups.get(group, 0) > 0, group
# Adam's moments have their parameter's shape: opt_G.<i> follows G's parameters in order, which
# safetensors does not keep; the shapes of both moments of each index agree with each other.
for name, t in tensors.items():
    if name.endswith(".exp_avg"):
        assert tensors[name + "_sq"].shape == t.shape, name
print(f"trainer_checkpoint_python: {path} read by safetensors: {len(tensors)} tensors, "
      f"{sum(n for g, n in groups.items() if g.startswith('opt_'))} of Adam's state, metadata {sorted(meta)}")
PY

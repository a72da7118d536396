#!/usr/bin/env python3
"""Edge-structure score between each input image and its translation.

A translation should change colour and texture while keeping where the edges are: the scene's
structure, which PatchGCL's graph loss is meant to preserve. The score is the correlation of the
two images' edge maps:

  1. each image as luminance in [0, 1] (BT.601), the input resized (bicubic) to the translation's size;
  2. its edge map: Sobel gradient magnitude (kernels divided by 8: gradient per pixel), smoothed by
     a Gaussian of sigma 1 px so that an edge moved by a pixel still counts;
  3. the Pearson correlation of the two maps over all pixels (0 where either map is constant).

It is 1 for the same edges at any contrast: the image itself and its inverted colours score 1.000.
On the Monet/Etretat pair at 160 x 128 the photograph of the same cliffs scores 0.166 against the
painting, the painting's mirror image 0.049, uniform noise -0.019, a blank image 0. Edges the
translation adds (texture) or loses lower it. It is blind to the target style (an identity
"translation" scores 1), so it is read beside FID, never alone. It uses no network, so it favours
none of the feature extractors the losses compare.

  structure-score.py --inputs DIR_OR_IMAGE --outputs DIR [--json FILE]

Inputs and outputs are matched by file stem (`translate` keeps the stem); an input image and one
output folder holding one image are matched directly. Prints and writes
{"edge_structure": mean, "per_image": {...}, "count": n}. Needs numpy and Pillow (Debian's
python3-numpy and python3-pil).
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def luminance(path, size=None):
    """[H, W] float64 luminance in [0, 1] of the image at `path`, resized to `size` (W, H) if given."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        if size is not None and rgb.size != size:
            rgb = rgb.resize(size, Image.BICUBIC)
        a = np.asarray(rgb, dtype=np.float64) / 255.0
    return a @ np.array([0.299, 0.587, 0.114])


def filter2d(x, kernel):
    """`x` correlated with a small 2-D `kernel`, edges replicated; same size as `x`."""
    kh, kw = kernel.shape
    padded = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="edge")
    out = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            out += kernel[i, j] * padded[i : i + x.shape[0], j : j + x.shape[1]]
    return out


def edges(lum):
    """Sobel gradient magnitude, per pixel."""
    sobel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
    return np.hypot(filter2d(lum, sobel), filter2d(lum, sobel.T))


def gaussian_window(sigma):
    """Normalised 2-D Gaussian, 6 sigma wide (odd)."""
    size = int(6 * sigma) | 1
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def edge_structure(input_path, output_path):
    """Correlation of the two images' smoothed edge maps (module docstring)."""
    with Image.open(output_path) as out:
        size = out.size
    w = gaussian_window(1.0)
    a = filter2d(edges(luminance(input_path, size)), w)
    b = filter2d(edges(luminance(output_path)), w)
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / norm) if norm > 0 else 0.0


def images(path):
    if os.path.isfile(path):
        return {os.path.splitext(os.path.basename(path))[0]: path}
    if not os.path.isdir(path):
        sys.exit(f"error: {path!r} is neither an image file nor a folder")
    return {
        os.path.splitext(name)[0]: os.path.join(path, name)
        for name in sorted(os.listdir(path))
        if name.lower().endswith(IMAGE_EXTENSIONS)
    }


def pairs(inputs, outputs):
    """(input, output) paths matched by stem; one input and one output are matched directly."""
    ins, outs = images(inputs), images(outputs)
    if len(ins) == 1 and len(outs) == 1:
        return [(next(iter(ins.values())), next(iter(outs.values())))]
    matched = [(ins[stem], outs[stem]) for stem in outs if stem in ins]
    if not matched:
        sys.exit(f"error: no output image in {outputs!r} has the stem of an input in {inputs!r}")
    return matched


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", required=True, help="input image or folder of inputs")
    parser.add_argument("--outputs", required=True, help="folder of translations (stems as the inputs')")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    per_image = {os.path.basename(o): edge_structure(i, o) for i, o in pairs(args.inputs, args.outputs)}
    result = {
        "edge_structure": float(np.mean(list(per_image.values()))),
        "count": len(per_image),
        "per_image": per_image,
    }
    text = json.dumps(result)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

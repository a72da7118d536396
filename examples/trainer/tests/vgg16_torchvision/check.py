#!/usr/bin/env python3
"""ctest trainer_vgg16_torchvision: the trainer's VGG16 activations against torchvision's.

    check.py WEIGHTS TRAINER_OUTPUT

WEIGHTS is scripts/fetch-vgg16.py's vgg16_features.safetensors; TRAINER_OUTPUT what the trainer's
test "[vgg16_torchvision]" wrote: `images` [B, 3, 256, 256] in [-1, 1] (the photographs of
../shared/data/monet_etretat decoded and resized by the trainer) and its VGG16's relu3_1, relu4_1,
relu4_3. Here, independently of the trainer: torchvision.models.vgg16().features (Debian's
python3-torchvision) loads WEIGHTS with strict=True (all 13 convolutions, torchvision's names and
shapes), the images are mapped to [0, 1] and normalised with ImageNet's mean and std
(torchvision.transforms.Normalize), and the outputs of features[:12], [:19] and [:23] (the ReLUs
after conv3_1, conv4_1, conv4_3) must equal the trainer's to float tolerance: the largest difference
at most TOLERANCE times the layer's largest activation. The two sides run the same float32
convolutions in different orders (LibTorch's C++ and PyTorch), which moves a value by ~1e-6 of it.
So that the comparison can fail: the same network on the images with R and B swapped (a BGR/RGB
mix-up) or without the normalisation is far outside it, and the activations are not all zero.
"""

import sys

import torch
import torchvision
from safetensors.torch import load_file

LAYERS = {"relu3_1": 11, "relu4_1": 18, "relu4_3": 22}  # torchvision `features` index of each ReLU
TOLERANCE = 1e-4  # of the layer's largest activation
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def activations(features, h):
    """The outputs of the ReLUs of LAYERS for the network's input `h`."""
    out = {}
    with torch.no_grad():
        for i, module in enumerate(features[: max(LAYERS.values()) + 1]):
            h = module(h)
            for name, index in LAYERS.items():
                if index == i:
                    out[name] = h.clone()
    return out


def main():
    weights, trainer_output = sys.argv[1], sys.argv[2]
    state = load_file(weights)
    features = torchvision.models.vgg16().features.eval()
    features.load_state_dict({k[len("features.") :]: v for k, v in state.items()}, strict=True)
    ours = load_file(trainer_output)
    images01 = (ours["images"].to(torch.float32) + 1) / 2
    assert images01.dim() == 4 and images01.shape[:2] == (ours["images"].shape[0], 3), images01.shape
    normalise = torchvision.transforms.Normalize(MEAN, STD)
    reference = activations(features, normalise(images01))
    failures = []
    for name, ref in reference.items():
        got = ours[name]
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        scale = ref.abs().max().item()
        diff = (got - ref).abs()
        max_abs = diff.max().item()
        nonzero = (ref > 0).float().mean().item()
        print(
            f"trainer_vgg16_torchvision: {name} {tuple(ref.shape)}: max |trainer - torchvision| = {max_abs:.3g}, "
            f"largest activation {scale:.4g}, relative {max_abs / scale:.3g} (tolerance {TOLERANCE:g}); "
            f"{100 * nonzero:.0f}% positive"
        )
        if not (scale > 0 and 0.05 < nonzero < 0.95):
            failures.append(f"{name}: activations are degenerate ({100 * nonzero:.1f}% positive, max {scale})")
        if max_abs > TOLERANCE * scale:
            failures.append(f"{name}: differs by {max_abs} > {TOLERANCE} x {scale}")
    # Plausible mistakes are far outside the tolerance (relu4_3, the deepest layer).
    for mistake, x in (("BGR input", normalise(images01.flip(1))), ("no normalisation", images01)):
        wrong = activations(features, x)["relu4_3"]
        ref = reference["relu4_3"]
        gap = (wrong - ref).abs().max().item() / ref.abs().max().item()
        print(f"trainer_vgg16_torchvision: {mistake}: relu4_3 differs by {gap:.3g} of its largest activation")
        if gap < 100 * TOLERANCE:
            failures.append(f"{mistake} is within 100 x the tolerance ({gap}): the comparison cannot tell it")
    if failures:
        print("trainer_vgg16_torchvision: FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"trainer_vgg16_torchvision: passed (torch {torch.__version__}, torchvision {torchvision.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Export Inception-v3 pool3 features as TorchScript, for `patchgcl-trainer evaluate --features`.

Run it once on a machine where the weights can be downloaded (pip's torch plus pytorch-fid or
torchvision), then copy the .pt file to where you evaluate:

    python3 -m venv /tmp/fid && /tmp/fid/bin/pip install torch torchvision pytorch-fid
    /tmp/fid/bin/python scripts/export-inception.py --out inception_pool3.pt                 # pytorch-fid's FID Inception
    /tmp/fid/bin/python scripts/export-inception.py --source torchvision --out tv_pool3.pt    # torchvision's ImageNet Inception

    patchgcl-trainer evaluate --checkpoint runs/x/ckpt.pt --data DATA --features inception_pool3.pt

`--source pytorch-fid` (default) uses the weights of the original TensorFlow FID Inception
(pt_inception-2015-12-05, with pytorch-fid's FID-specific blocks): FIDs comparable with papers
that use pytorch-fid (CUT, PatchGCL). `--source torchvision` uses torchvision's ImageNet
Inception-v3: the same architecture with other weights, so its FIDs are NOT comparable with
published numbers; use it for relative comparisons only.

The exported module follows the trainer's contract (examples/trainer/eval/feature_network.hpp):
input [B, 3, H, W] float32 RGB in [0, 1], any H and W (resized to 299 x 299 bilinearly inside, as
pytorch-fid's resize_input); output [B, 2048] (torchvision) or [B, 2048, 1, 1] (pytorch-fid),
the 2048-D average-pooled features before the classifier ("pool3"). The script checks the saved
file by loading it back and comparing its output with the eager model's.
"""
import argparse
import sys

import torch
import torch.nn.functional as F


class PytorchFidPool3(torch.nn.Module):
    """pytorch-fid's InceptionV3 (resize to 299, [0, 1] -> [-1, 1] inside), pool3 block only."""

    def __init__(self):
        super().__init__()
        from pytorch_fid.inception import InceptionV3
        block = InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        self.net = InceptionV3([block], resize_input=True, normalize_input=True, use_fid_inception=True)

    def forward(self, x):
        return self.net(x)[0]  # [B, 2048, 1, 1]


class TorchvisionPool3(torch.nn.Module):
    """torchvision's ImageNet Inception-v3 with the classifier removed."""

    def __init__(self):
        super().__init__()
        import torchvision
        net = torchvision.models.inception_v3(weights=torchvision.models.Inception_V3_Weights.IMAGENET1K_V1,
                                              aux_logits=True, transform_input=False)
        net.fc = torch.nn.Identity()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)  # eval mode: [B, 2048]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=["pytorch-fid", "torchvision"], default="pytorch-fid")
    parser.add_argument("--out", required=True, help="TorchScript file to write")
    args = parser.parse_args()

    model = (PytorchFidPool3() if args.source == "pytorch-fid" else TorchvisionPool3()).eval()
    example = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        # Tracing records the resize to a constant 299 x 299, so the file accepts any input size.
        traced = torch.jit.trace(model, example)
        traced.save(args.out)
        loaded = torch.jit.load(args.out)
        for shape in [(2, 3, 256, 256), (3, 3, 128, 192)]:
            x = torch.rand(*shape)
            expected, got = model(x), loaded(x)
            if got.shape[0] != shape[0] or got.reshape(shape[0], -1).shape[1] != 2048:
                sys.exit(f"unexpected output shape {tuple(got.shape)} for input {shape}")
            err = (expected - got).abs().max().item()
            if err > 1e-4:
                sys.exit(f"the saved module differs from the eager one by {err} on input {shape}")
    print(f"wrote {args.out}: {args.source} Inception-v3 pool3, [B, 3, H, W] in [0, 1] -> "
          f"{tuple(got.shape[1:])} features per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Converts weights trained with the authors' Python code into a safetensors file that
`patchgcl::io::load_parameters` loads into the C++ modules by name.

    PYTHONPATH=python python3 scripts/convert-reference-weights.py CHECKPOINT.pth OUT.safetensors [--kind auto|patchgcl|cut|dgl_tagconv|pyg_tagconv|pyg_topk]

The tensors go under patchgcl's names, the configuration (source, layer sizes) into the file's
`__metadata__`. An OUT ending in `.pgt` writes the older `.pgt` format instead (patchgcl still
reads it; safetensors is the format to use).

CHECKPOINT is anything torch.load returns a state dict (or module) from: PatchGCL's GNNLoss
(netF of jcy132/PatchGCL), CUT/PUT's PatchSampleF (latest_net_F.pth), a DGL or PyG TAGConv, a PyG
TopKPooling. A leading `module.` (DataParallel) is stripped. The conversion and its name mapping
are in python/patchgcl_reference/convert.py (docs/reference-compatibility.md).

Needs torch, numpy and the `safetensors` package (pip install safetensors; not for `.pgt`), and
`PYTHONPATH=python` (python/README.md).
"""

import argparse
import sys

import torch
from patchgcl_reference import pgt
from patchgcl_reference.convert import KINDS, convert


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("output")
    parser.add_argument("--kind", default="auto", choices=KINDS)
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    tensors, config = convert(state, args.kind)
    if args.output.endswith(".pgt"):
        pgt.write(args.output, tensors, config)
    else:
        try:
            from safetensors.torch import save_file
        except ImportError:
            print(
                "convert-reference-weights.py: writing safetensors needs the `safetensors` package "
                "(pip install safetensors), or an OUT ending in .pgt",
                file=sys.stderr,
            )
            return 1
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            args.output,
            metadata={k: str(v) for k, v in config.items()},
        )
    print(f"{args.output}: {len(tensors)} tensors from a {config['source']} checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())

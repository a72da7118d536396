#!/usr/bin/env python3
"""Converts weights trained with the authors' Python code into a `.pgt` file that
`patchgcl::io::load_parameters` loads into the C++ modules by name.

    PYTHONPATH=python python3 scripts/convert_reference_weights.py CHECKPOINT.pth OUT.pgt [--kind auto|patchgcl|cut|dgl_tagconv|pyg_tagconv|pyg_topk]

CHECKPOINT is anything torch.load returns a state dict (or module) from: PatchGCL's GNNLoss
(netF of jcy132/PatchGCL), CUT/PUT's PatchSampleF (latest_net_F.pth), a DGL or PyG TAGConv, a PyG
TopKPooling. A leading `module.` (DataParallel) is stripped. The conversion itself is
python/patchgcl_reference/convert.py; name mapping (docs/reference-compatibility.md):

  PatchGCL GNNLoss                      patchgcl::GraphNCELoss
    embed_i.linear.{weight,bias}          embed_i.{weight,bias}
    gnn_i.conv1.lin.{weight,bias}         gnn_i.lin.{weight,bias}
    pools_i.l.proj.{weight,bias}          pools_i.l.proj.{weight,bias}
    gnn_pools_i.l.conv1.lin.{weight,bias} gnn_pools_i.l.lin.{weight,bias}
  CUT PatchSampleF mlp_i.{0,2}.{weight,bias}  -> patchgcl::PatchNCELoss, same names
  DGL TAGConv lin.{weight,bias}               -> patchgcl::TAGConv, same names
  PyG TAGConv lins.l.weight, bias             -> lin.weight = cat_l(lins.l.weight, dim=1), lin.bias
  PyG TopKPooling weight (or select.weight)   -> proj.weight (TopKPool: tanh, divide_by_norm, no bias)

Needs only torch and numpy, and `PYTHONPATH=python` (python/README.md).
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
    parser.add_argument("--kind", default="auto",
                        choices=KINDS)
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    tensors, config = convert(state, args.kind)
    pgt.write(args.output, tensors, config)
    print(f"{args.output}: {len(tensors)} tensors from a {config['source']} checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())

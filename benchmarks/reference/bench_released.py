#!/usr/bin/env python3
"""Timings of the released implementations' code paths on the same shapes as bench_losses.cpp.

What a user runs instead of patchgcl:
  * graph_nce: the authors' GNNLoss (jcy132/PatchGCL, models/PatchGCL.py) as it runs: per layer an
    Embed (Linear + x/||x||) of both images' patches, the adjacency [x x^T > t] moved to the host,
    a scipy.sparse CSR matrix, a DGL graph built from it with dgl.from_scipy + dgl.add_self_loop,
    moved to the device, DGL's TAGConv (K = 2) on both images, x/||x||, the two-way InfoNCE; then
    the Pool: sigmoid(proj) top-k on the key nodes, bool(A @ A) restricted to the kept nodes,
    row-normalised, again to the host, scipy CSR, a new DGL graph, a K = 1 TAGConv, InfoNCE x 0.5.
    Graphs are rebuilt on the host at every call, as the released code does at every step.
  * patch_nce: CUT's PatchSampleF (use_mlp) + PatchNCELoss (taesungp/contrastive-unpaired-translation,
    models/networks.py, models/patchnce.py): patches of the whole batch at the same ids, the
    two-layer MLP head, x/(||x|| + 1e-7), positives and negatives by bmm over the batch dimension
    (nce_includes_all_negatives_from_minibatch off), diagonal -10, cross-entropy, mean per layer.

Written from python/patchgcl_reference/reference.py and the DGL-built flow of
tests/reference/check_against_libraries.py (checked against the released GNNLoss run with DGL 1.1.3
to 1e-15: see tests/reference/README.md) and the papers; nothing is copied from the released files. The
released code calls .cuda() on its graphs and tensors; on CPU those are the .to(device) calls
below with device = cpu, i.e. no-ops. Only the patch ids are fixed (the released samplers draw
them with randperm each step; here both sides use the same ids).

The released GNNLoss handles one image per call; for B > 1 this script loops over the images and
averages, as bench_reference.py does. CUT's loss takes the batch as it is.

    PYTHONPATH=python python benchmarks/reference/bench_released.py --out released.json [--filter paper] [--threads 2] [--repetitions 7]

Needs DGL 1.1.3 and scipy (scripts/bench.sh makes a virtual environment with them). Debian's
python3-torch reports its version as "1.13.0a0" (a build of 1.13.1), which DGL 1.1.3's import-time
check (`>= 1.13.0`) refuses: if and only if that exact string is seen, torch.__version__ is set
to "1.13.1" in this process before DGL is imported (see debian_torch_version_shim). Nothing in
site-packages is changed.
"""

import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_reference as common  # noqa: E402  (workloads, inputs, parameters, timing: shared)


def debian_torch_version_shim():
    """Debian 12's python3-torch 1.13.1 reports "1.13.0a0"; DGL 1.1.3 raises on anything below
    1.13.0 at import. Returns the original string (for the JSON context)."""
    original = torch.__version__
    if str(original) == "1.13.0a0":
        torch.__version__ = "1.13.1"
    return str(original)


TORCH_REPORTED = debian_torch_version_shim()
os.environ.setdefault("DGLBACKEND", "pytorch")
import dgl  # noqa: E402
from dgl.nn.pytorch import TAGConv  # noqa: E402
from scipy import sparse  # noqa: E402

DEVICE = torch.device("cpu")  # the released .cuda() calls, made no-ops on CPU


# --------------------------------------------------------------------------- PatchGCL GNNLoss


def normalize(x):
    """PatchGCL's Normalize(2): x / ||x|| along dim 1, no epsilon."""
    return x.div(x.pow(2).sum(1, keepdim=True).pow(0.5))


def graph_from_host(matrix_np):
    """The released graph construction: a scipy CSR on the host, a DGL graph, its self loops added
    (the thresholded adjacency already has its diagonal: DGL then holds two loops per node)."""
    g = dgl.from_scipy(sparse.csr_matrix(matrix_np))
    return dgl.add_self_loop(g).to(DEVICE)


def two_way_nce(out_nodes, in_nodes, tau=0.07, diagonal=-10.0):
    """calc_gnn: cross-entropy with the positive first, -10 on the negatives' diagonal, both ways."""
    n = out_nodes.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=DEVICE)
    target = torch.zeros(n, dtype=torch.long, device=DEVICE)
    pos = (in_nodes * out_nodes).sum(1, keepdim=True)
    neg_a = torch.mm(in_nodes, out_nodes.t()).masked_fill(eye, diagonal)
    neg_b = torch.mm(out_nodes, in_nodes.t()).masked_fill(eye, diagonal)
    return F.cross_entropy(torch.cat([pos, neg_a], 1) / tau, target) + F.cross_entropy(
        torch.cat([pos, neg_b], 1) / tau, target
    )


class ReleasedGNNLoss:
    """One GNNLoss with the modules it owns (Embed linears, TAGConvs, pool projections), their
    weights taken from the same parameter dict as the other implementations."""

    def __init__(self, params, layers=3, threshold=0.1, down_scale=4, pooled_weight=0.5):
        self.p, self.layers, self.threshold = params, layers, threshold
        self.down_scale, self.pooled_weight = down_scale, pooled_weight
        self.convs = {}
        for i in range(layers):
            for prefix, hops in ((f"gnn_{i}", 2), (f"gnn_pools_{i}.0", 1)):
                nc = params[prefix + ".lin.bias"].shape[0]
                conv = TAGConv(nc, nc, k=hops)
                conv.lin.weight = torch.nn.Parameter(params[prefix + ".lin.weight"])
                conv.lin.bias = torch.nn.Parameter(params[prefix + ".lin.bias"])
                self.convs[prefix] = conv.to(DEVICE)
                params[prefix + ".lin.weight"] = conv.lin.weight  # the leaves the step zeroes
                params[prefix + ".lin.bias"] = conv.lin.bias

    def __call__(self, output_features, input_features, patch_ids):
        total = 0.0
        for i in range(self.layers):
            ids = patch_ids[i]
            w, b = self.p[f"embed_{i}.weight"], self.p[f"embed_{i}.bias"]
            f_in = normalize(F.linear(common.reference.sample_patches(input_features[i], ids), w, b))
            f_out = normalize(F.linear(common.reference.sample_patches(output_features[i], ids), w, b))
            key = f_in.detach()
            adjacency = (torch.mm(key, key.t()) > self.threshold).long().cpu().numpy()  # to the host
            g = graph_from_host(adjacency)
            conv = self.convs[f"gnn_{i}"]
            nodes_in = normalize(conv(g, f_in)).detach()
            nodes_out = normalize(conv(g, f_out))
            loss = two_way_nce(nodes_out, nodes_in)
            # Pool (one level at 1/down_scale).
            proj_w, proj_b = self.p[f"pools_{i}.0.proj.weight"], self.p[f"pools_{i}.0.proj.bias"]
            scores = torch.sigmoid(F.linear(nodes_in, proj_w, proj_b)).squeeze()
            keep = max(2, ids.shape[0] // self.down_scale)
            values, idx = torch.topk(scores, keep)
            pooled_in = nodes_in[idx] * values.unsqueeze(-1)
            pooled_out = nodes_out[idx] * values.unsqueeze(-1)
            unweighted = torch.from_numpy(adjacency).to(DEVICE).bool().float()
            two_hop = torch.mm(unweighted, unweighted).bool().float()[idx][:, idx]
            weighted = (two_hop / two_hop.sum(1)).cpu().numpy()  # to the host again
            pooled_g = graph_from_host(weighted)
            pconv = self.convs[f"gnn_pools_{i}.0"]
            p_in = normalize(pconv(pooled_g, pooled_in)).detach()
            p_out = normalize(pconv(pooled_g, pooled_out))
            loss = loss + self.pooled_weight * two_way_nce(p_out, p_in)
            total = total + loss / 2
        return total / self.layers


# --------------------------------------------------------------------------- CUT PatchNCELoss


def cut_patch_sample(feature_map, ids, params, layer):
    """PatchSampleF(use_mlp=True): [B, C, H, W] -> [B * N, nc], the same ids for every image."""
    patches = feature_map.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :].flatten(0, 1)
    h = F.relu(F.linear(patches, params[f"mlp_{layer}.0.weight"], params[f"mlp_{layer}.0.bias"]))
    h = F.linear(h, params[f"mlp_{layer}.2.weight"], params[f"mlp_{layer}.2.bias"])
    return h.div(h.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)


def cut_patch_nce(feat_q, feat_k, batch, tau=0.07):
    """PatchNCELoss.forward with negatives from the same image only (bmm over the batch)."""
    rows, dim = feat_q.shape
    feat_k = feat_k.detach()
    l_pos = torch.bmm(feat_q.view(rows, 1, -1), feat_k.view(rows, -1, 1)).view(rows, 1)
    q, k = feat_q.view(batch, -1, dim), feat_k.view(batch, -1, dim)
    n = q.size(1)
    l_neg = torch.bmm(q, k.transpose(2, 1))
    l_neg.masked_fill_(torch.eye(n, device=DEVICE, dtype=torch.bool)[None, :, :], -10.0)
    logits = torch.cat((l_pos, l_neg.view(-1, n)), dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(rows, dtype=torch.long, device=DEVICE), reduction="none")


def released_patch_nce(output_features, input_features, patch_ids, params):
    """CUT's calculate_NCE_loss (lambda_NCE 1): mean over patches per layer, mean over layers."""
    batch = output_features[0].shape[0]
    total = 0.0
    for i, (fs, ft) in enumerate(zip(output_features, input_features)):
        q = cut_patch_sample(fs, patch_ids[i], params, i)
        k = cut_patch_sample(ft, patch_ids[i], params, i)
        total = total + cut_patch_nce(q, k, batch).mean()
    return total / len(output_features)


# --------------------------------------------------------------------------- timing


def released_graph_nce(gen):
    """The benchmark case of the released GNNLoss: one image per call, averaged over the batch."""
    params = common.graph_params(gen)
    gnn = ReleasedGNNLoss(params)
    return (lambda o, i, ids: common.per_image(lambda o1, i1, ids1, _: gnn(o1, i1, ids1), o, i, ids, None)), params


def released_patch_nce_case(gen):
    """The benchmark case of CUT's PatchSampleF + PatchNCELoss, on the whole batch."""
    params = common.patch_params(gen)
    return (lambda o, i, ids: released_patch_nce(o, i, ids, params)), params


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    common.run(
        args,
        {"graph_nce": released_graph_nce, "patch_nce": released_patch_nce_case},
        {
            "implementation": "released code paths: PatchGCL GNNLoss (DGL + scipy), CUT PatchNCELoss",
            "torch_version": TORCH_REPORTED,
            "dgl_version": dgl.__version__,
        },
    )


if __name__ == "__main__":
    main()

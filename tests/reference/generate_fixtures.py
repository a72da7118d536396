#!/usr/bin/env python3
"""Writes tests/fixtures/*.pgt from the plain-torch reference (patchgcl_reference.reference, python/).

    PYTHONPATH=python /usr/bin/python3 tests/reference/generate_fixtures.py [--out tests/fixtures] [--check]

Deterministic: CPU, float64, one thread, fixed seeds, fixed file layout (pgt.py). With the same
torch build and BLAS as the committed files' (Debian python3-torch 1.13.1 on OpenBLAS) the output
is byte for byte identical to them; another BLAS (or another OpenBLAS kernel for the CPU) sums the
products in another order, and float64 values then differ in their last bits. --check regenerates
into a temporary folder and compares each file: identical bytes, or else the same tensor names,
shapes, dtypes, configuration and integer tensors, with floating-point values within 1e-12
relative of the committed ones (the tests compare at 1e-9); it prints the largest difference.

Every case stores its inputs, weights (under the patchgcl C++ parameter names, prefix `param.`),
sampled patch ids, the expected loss and the gradients w.r.t. the output-image features and every
weight (prefix `grad.`). Inputs are re-drawn (seed + 1, ...) until the float32 replay is
well-posed: no cosine within `margin` of the adjacency threshold and no near-tie deciding a top-k
or a sort, so a float32 run takes the same discrete decisions as the float64 reference.
"""

import argparse
import filecmp
import math
import os
import sys
import tempfile

import torch
from patchgcl_reference import convert as conv
from patchgcl_reference import pgt
from patchgcl_reference import reference as ref

torch.set_num_threads(1)
DT = torch.float64


def randn(g, *shape, std=1.0):
    return torch.randn(*shape, generator=g, dtype=DT) * std


def linear_params(g, params, name, fan_in, fan_out):
    params[name + ".weight"] = randn(g, fan_out, fan_in, std=1.0 / math.sqrt(fan_in))
    params[name + ".bias"] = randn(g, fan_out, std=0.1)


def symmetric_adjacency(g, n, p, diagonal):
    a = (torch.rand(n, n, generator=g, dtype=DT) < p).to(DT)
    a = torch.triu(a, 1)
    a = a + a.t()
    a.fill_diagonal_(1.0 if diagonal else 0.0)
    return a


def gradients(loss, tensors):
    """Named gradients (zeros where a tensor does not influence the loss)."""
    names = list(tensors)
    grads = torch.autograd.grad(loss, [tensors[k] for k in names], allow_unused=True)
    return {k: (gr if gr is not None else torch.zeros_like(tensors[k])) for k, gr in zip(names, grads)}


def min_gap_sorted(values):
    s = values.sort()[0]
    return (s[1:] - s[:-1]).min().item() if s.numel() > 1 else math.inf


# --------------------------------------------------------------------------- layer cases


def case_tagconv_dgl(seed):
    g = torch.Generator().manual_seed(seed)
    n, cin, cout, hops = 10, 5, 4, 2
    adjacency = symmetric_adjacency(g, n, 0.3, diagonal=True)  # as cosine_adjacency gives it
    x = randn(g, n, cin).requires_grad_()
    params = {}
    linear_params(g, params, "lin", (hops + 1) * cin, cout)
    params = {k: v.requires_grad_() for k, v in params.items()}
    cotangent = randn(g, n, cout)
    m = adjacency + torch.eye(n, dtype=DT)  # dgl.add_self_loop on a graph that has the loop
    norm = m.sum(0).clamp(min=1).pow(-0.5)
    out = ref.dgl_tagconv(x, m, params["lin.weight"], params["lin.bias"])
    grads = gradients((out * cotangent).sum(), {"x": x, **params})
    t = {
        "adjacency": adjacency,
        "x": x,
        "cotangent": cotangent,
        "expected.output": out,
        "expected.normalized_adjacency": norm[:, None] * m * norm[None, :],
    }
    t.update({"param." + k: v for k, v in params.items()})
    t.update({"grad." + k: v for k, v in grads.items()})
    cfg = {
        "in_channels": cin,
        "out_channels": cout,
        "hops": hops,
        "self_loops": "double",
        "normalization": "symmetric",
        "seed": seed,
    }
    return t, cfg


def case_tagconv_pyg(seed):
    g = torch.Generator().manual_seed(seed)
    n, cin, cout, hops = 10, 5, 4, 3
    adjacency = symmetric_adjacency(g, n, 0.3, diagonal=False)
    adjacency[n - 1, :] = 0.0  # one isolated node: PyG maps deg^-1/2 = inf to 0
    adjacency[:, n - 1] = 0.0
    x = randn(g, n, cin).requires_grad_()
    lins = [randn(g, cout, cin, std=1.0 / math.sqrt(cin)).requires_grad_() for _ in range(hops + 1)]
    bias = randn(g, cout, std=0.1).requires_grad_()
    cotangent = randn(g, n, cout)
    edge_index = adjacency.nonzero().t().contiguous()
    out = ref.pyg_tagconv(x, edge_index, lins, bias)
    grads = gradients(
        (out * cotangent).sum(), {"x": x, **{f"lins.{l}.weight": w for l, w in enumerate(lins)}, "bias": bias}
    )
    t = {
        "adjacency": adjacency,
        "edge_index": edge_index,
        "x": x,
        "cotangent": cotangent,
        "expected.output": out,
        "grad.x": grads["x"],
        # the C++ layout (DGL's): one Linear over the concatenated hops
        "param.lin.weight": torch.cat(lins, dim=1),
        "param.lin.bias": bias,
        "grad.lin.weight": torch.cat([grads[f"lins.{l}.weight"] for l in range(hops + 1)], dim=1),
        "grad.lin.bias": grads["bias"],
    }
    t.update({f"pyg.lins.{l}.weight": w for l, w in enumerate(lins)})
    t["pyg.bias"] = bias
    cfg = {
        "in_channels": cin,
        "out_channels": cout,
        "hops": hops,
        "self_loops": "none",
        "normalization": "symmetric",
        "seed": seed,
    }
    return t, cfg


def case_topk_pool_pyg(seed):
    while True:
        g = torch.Generator().manual_seed(seed)
        n, c, ratio = 12, 6, 0.5
        adjacency = symmetric_adjacency(g, n, 0.35, diagonal=False)
        x = randn(g, n, c).requires_grad_()
        p = randn(g, 1, c).requires_grad_()
        cotangent_k = int(math.ceil(ratio * n))
        cotangent = randn(g, cotangent_k, c)
        score_all = torch.tanh((x * p).sum(-1) / p.norm(p=2, dim=-1)).detach()
        if min_gap_sorted(score_all) > 1e-4:
            break
        seed += 1
    edge_index = adjacency.nonzero().t().contiguous()
    pooled, pooled_edges, perm, scores = ref.pyg_topk_pool(x, edge_index, p, ratio)
    k = perm.shape[0]
    pooled_adjacency = torch.zeros(k, k, dtype=DT)
    pooled_adjacency[pooled_edges[0], pooled_edges[1]] = 1.0
    grads = gradients((pooled * cotangent).sum(), {"x": x, "proj.weight": p})
    t = {
        "adjacency": adjacency,
        "edge_index": edge_index,
        "x": x,
        "cotangent": cotangent,
        "param.proj.weight": p,
        "pyg.weight": p,
        "expected.indices": perm,
        "expected.scores": scores,
        "expected.pooled": pooled,
        "expected.pooled_adjacency": pooled_adjacency,
        "grad.x": grads["x"],
        "grad.proj.weight": grads["proj.weight"],
    }
    cfg = {
        "in_channels": c,
        "k": k,
        "ratio": ratio,
        "activation": "tanh",
        "bias": "false",
        "divide_by_norm": "true",
        "pooled_adjacency": "induced",
        "seed": seed,
    }
    return t, cfg


# --------------------------------------------------------------------------- loss cases


def feature_maps(g, in_channels, sizes):
    outs = [randn(g, 1, c, h, w).requires_grad_() for c, (h, w) in zip(in_channels, sizes)]
    ins = [randn(g, 1, c, h, w) for c, (h, w) in zip(in_channels, sizes)]
    return outs, ins


def draw_inputs(seed, in_channels, sizes, num_patches):
    """Generator seeded with `seed`, then the feature maps and one set of patch ids per layer."""
    g = torch.Generator().manual_seed(seed)
    outs, ins = feature_maps(g, in_channels, sizes)
    ids = [torch.randperm(h * w, generator=g)[:num_patches] for h, w in sizes]
    return g, outs, ins, ids


def loss_tensors(loss, outs, ins, ids, params):
    """The tensors of a loss fixture: the loss, its inputs and weights, and its gradients w.r.t. the
    output features and every parameter, under the names the C++ parity tests read."""
    grads = gradients(loss, {**{f"output_features.{i}": o for i, o in enumerate(outs)}, **params})
    t = {"expected.loss": loss}
    t.update({f"output_features.{i}": o for i, o in enumerate(outs)})
    t.update({f"input_features.{i}": x for i, x in enumerate(ins)})
    t.update({f"patch_ids.{i}": p for i, p in enumerate(ids)})
    t.update({"param." + k: v for k, v in params.items()})
    t.update({"grad." + k: v for k, v in grads.items()})
    return t


def graph_case(seed, in_channels, sizes, num_patches, nc, threshold=0.1, margin=1e-5, store_trace=True):
    """PatchGCL GNNLoss as released: 2 hops, 1 pooling level at 1/4 (K=1 pooled TAGConv), weights 1, 0.5."""
    hops, pooling_levels, down_scale, pooled_hops = 2, 1, 4, 1
    while True:
        g, outs, ins, ids = draw_inputs(seed, in_channels, sizes, num_patches)
        params = {}
        for i, c in enumerate(in_channels):
            linear_params(g, params, f"embed_{i}", c, nc)
            linear_params(g, params, f"gnn_{i}.lin", (hops + 1) * nc, nc)
            linear_params(g, params, f"pools_{i}.0.proj", nc, 1)
            linear_params(g, params, f"gnn_pools_{i}.0.lin", (pooled_hops + 1) * nc, nc)
        # well-posedness for the float32 replay
        ok = True
        with torch.no_grad():
            trace = {}
            ref.graph_nce_loss(outs, ins, ids, params, threshold, trace=trace)
            for i in range(len(in_channels)):
                e = ref.l2_normalize_plain(
                    ref.sample_patches(ins[i], ids[i]) @ params[f"embed_{i}.weight"].t() + params[f"embed_{i}.bias"]
                )
                cos = e @ e.t()
                off = cos[~torch.eye(num_patches, dtype=torch.bool)]
                ok &= (off - threshold).abs().min().item() > margin
                a = trace[f"adjacency_{i}"]
                in_nodes = ref._encoder(e, a, params, f"gnn_{i}")
                s = (
                    torch.sigmoid(in_nodes @ params[f"pools_{i}.0.proj.weight"].t() + params[f"pools_{i}.0.proj.bias"])
                    .squeeze(-1)
                    .sort(descending=True)[0]
                )
                keep = max(2, num_patches // down_scale)
                ok &= (s[keep - 1] - s[keep]).item() > margin
        if ok:
            break
        seed += 1
    params = {k: v.requires_grad_() for k, v in params.items()}
    trace = {}
    loss = ref.graph_nce_loss(outs, ins, ids, params, threshold, pooling_levels, down_scale, (1.0, 0.5), trace=trace)
    t = loss_tensors(loss, outs, ins, ids, params)
    if store_trace:  # intermediate results, to tell which stage differs when a test fails
        t.update({"trace." + k: v for k, v in trace.items()})
        t.update(
            {
                f"trace.input_embedding_{i}": ref.l2_normalize_plain(
                    ref.sample_patches(ins[i], ids[i]) @ params[f"embed_{i}.weight"].t() + params[f"embed_{i}.bias"]
                )
                for i in range(len(in_channels))
            }
        )
    cfg = {
        "num_layers": len(in_channels),
        "in_channels": ",".join(map(str, in_channels)),
        "num_patches": num_patches,
        "nc": nc,
        "threshold": threshold,
        "comparison": "greater",
        "self_loops": "double",
        "normalization": "symmetric",
        "hops": hops,
        "pooling_levels": pooling_levels,
        "down_scale": down_scale,
        "pooled_hops": pooled_hops,
        "level_weights": "1,0.5",
        "pool_activation": "sigmoid",
        "pool_bias": "true",
        "pooled_adjacency": "two_hop",
        "direction": "both",
        "temperature": 0.07,
        "diagonal_value": -10.0,
        "seed": seed,
    }
    return t, cfg


def patchnce_case(
    seed, pruning, k=5, in_channels=(3, 5, 8), sizes=((8, 8), (8, 8), (4, 4)), num_patches=16, nc=16, margin=1e-5
):
    while True:
        g, outs, ins, ids = draw_inputs(seed, in_channels, sizes, num_patches)
        params = {}
        for i, c in enumerate(in_channels):
            linear_params(g, params, f"mlp_{i}.0", c, nc)
            linear_params(g, params, f"mlp_{i}.2", nc, nc)
        ok = True
        with torch.no_grad():
            for i in range(len(in_channels)):

                def head(v):
                    pre = v @ params[f"mlp_{i}.0.weight"].t() + params[f"mlp_{i}.0.bias"]
                    return pre, ref.l2_normalize_cut(
                        torch.relu(pre) @ params[f"mlp_{i}.2.weight"].t() + params[f"mlp_{i}.2.bias"]
                    )

                pre_q, q = head(ref.sample_patches(outs[i], ids[i]))
                pre_k, key = head(ref.sample_patches(ins[i], ids[i]))
                ok &= min(pre_q.abs().min().item(), pre_k.abs().min().item()) > margin  # ReLU kinks
                neg = (q @ key.t()).masked_fill(torch.eye(q.shape[0], dtype=torch.bool), -10.0)
                if pruning == "column_sort":
                    ok &= all(min_gap_sorted(neg[:, j]) > margin for j in range(neg.shape[1]))
                elif pruning == "hardest_per_query":
                    s = neg.sort(dim=1, descending=True)[0]
                    ok &= (s[:, k - 1] - s[:, k]).min().item() > margin
        if ok:
            break
        seed += 1
    params = {n_: v.requires_grad_() for n_, v in params.items()}
    loss = ref.patch_nce_loss(outs, ins, ids, params, pruning=pruning, k=k)
    t = loss_tensors(loss, outs, ins, ids, params)
    cfg = {
        "num_layers": len(in_channels),
        "in_channels": ",".join(map(str, in_channels)),
        "num_patches": num_patches,
        "nc": nc,
        "temperature": 0.07,
        "diagonal_value": -10.0,
        "direction": "query_to_key",
        "pruning": pruning,
        "hard_negatives": k,
        "l2_eps": "add_1e-7",
        "seed": seed,
    }
    return t, cfg


def case_converted_patchgcl():
    """A GNNLoss state dict under the released code's names, run through the converter, as a
    user would: the C++ test loads it by name and must reproduce graph_nce_small's loss."""
    tensors, _ = graph_case(404, (3, 5, 8), ((8, 8), (8, 8), (6, 6)), num_patches=16, nc=16)
    params = {k[len("param.") :]: v.detach() for k, v in tensors.items() if k.startswith("param.")}
    return conv.convert(conv.to_released(params))


CASES = {
    "tagconv_dgl": lambda: case_tagconv_dgl(101),
    "tagconv_pyg": lambda: case_tagconv_pyg(202),
    "topk_pool_pyg": lambda: case_topk_pool_pyg(303),
    "graph_nce_small": lambda: graph_case(404, (3, 5, 8), ((8, 8), (8, 8), (6, 6)), num_patches=16, nc=16),
    # the released run's structure (3 layers, 256 patches, 64 pooled nodes) with small channel counts
    "graph_nce_released": lambda: graph_case(
        505, (4, 6, 6), ((16, 16), (16, 16), (16, 16)), num_patches=256, nc=16, margin=2e-6, store_trace=False
    ),
    "patchnce_cut": lambda: patchnce_case(606, "none"),
    "patchnce_put_code": lambda: patchnce_case(707, "column_sort", k=5),
    "patchnce_put_paper": lambda: patchnce_case(808, "hardest_per_query", k=5),
    "converted_patchgcl_small": case_converted_patchgcl,
}


def generate(out_dir, only=None):
    os.makedirs(out_dir, exist_ok=True)
    for name, make in CASES.items():
        if only and name not in only:
            continue
        tensors, cfg = make()
        cfg["case"] = name
        cfg["generator_torch"] = torch.__version__
        pgt.write(os.path.join(out_dir, name + ".pgt"), tensors, cfg)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "fixtures"))
    parser.add_argument(
        "--check", action="store_true", help="regenerate into a temp dir and compare with the committed files"
    )
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    if not args.check:
        generate(args.out, args.cases)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, args.cases)
        bad = []
        for f in sorted(os.listdir(tmp)):
            verdict = compare_fixture(os.path.join(tmp, f), os.path.join(args.out, f))
            print(f"{f}: {verdict or 'DIFFERENT'}")
            if verdict is None:
                bad.append(f)
        print("all fixtures agree" if not bad else "DIFFERENT: " + " ".join(bad))
        return 1 if bad else 0


def compare_fixture(new, committed, rtol=1e-12):
    """ "identical", "equal to <d> relative" (floating-point values only, everything else equal),
    or None with the reason printed."""
    if not os.path.exists(committed):
        print(f"  {committed} does not exist")
        return None
    if filecmp.cmp(new, committed, shallow=False):
        return "identical"
    (a, cfg_a), (b, cfg_b) = pgt.read(new), pgt.read(committed)
    if cfg_a != cfg_b or sorted(a) != sorted(b):
        print(f"  configuration or tensor names differ: {sorted(set(a) ^ set(b))}")
        return None
    worst = 0.0
    for name in sorted(a):
        x, y = a[name], b[name]
        if x.dtype != y.dtype or x.shape != y.shape:
            print(f"  {name}: {x.dtype} {list(x.shape)} against {y.dtype} {list(y.shape)}")
            return None
        if not x.is_floating_point():
            if not torch.equal(x, y):
                print(f"  {name}: integer values differ")
                return None
            continue
        scale = y.abs().max().item() if y.numel() else 0.0
        diff = (x - y).abs().max().item() / scale if scale > 0 else float((x != y).any())
        if not diff <= rtol:
            print(f"  {name}: {diff:.3g} relative to its largest value (allowed {rtol:g})")
            return None
        worst = max(worst, diff)
    return f"equal to {worst:.2g} relative (another summation order)"


if __name__ == "__main__":
    sys.exit(main())

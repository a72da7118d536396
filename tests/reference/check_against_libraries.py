#!/usr/bin/env python3
"""Cross-checks the committed fixtures (made by reference.py) against the real libraries.

    PYTHONPATH=python python tests/reference/check_against_libraries.py            # needs dgl and/or torch_geometric
    PYTHONPATH=python python tests/reference/check_against_libraries.py --float32  # float32 replay of the reference

Each check loads a fixture, rebuilds the computation with the library's own modules and weights
set from the fixture, and reports the largest relative difference of the outputs and gradients.
Missing packages are reported as SKIPPED, never as passed. See README.md for the versions used.
"""

import argparse
import os
import sys

import torch
from patchgcl_reference import pgt
from patchgcl_reference import reference as ref

HERE = os.path.dirname(os.path.abspath(__file__))

FIX = os.path.join(HERE, "..", "fixtures")
failures = []


def rel(a, b):
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-300)).item()


def report(name, diffs, tol):
    worst = max(diffs.values())
    status = "ok" if worst <= tol else "FAIL"
    if status == "FAIL":
        failures.append(name)
    print(
        f"[{status}] {name}: max rel diff {worst:.2e} (tol {tol:.0e}) "
        + " ".join(f"{k}={v:.1e}" for k, v in diffs.items())
    )


def load(case):
    return pgt.read(os.path.join(FIX, case + ".pgt"))


# --------------------------------------------------------------------------- DGL


def check_dgl():
    # DGL's version check rejects Debian's "1.13.0a0" build string of torch 1.13.1.
    if torch.__version__.startswith("1.13.0a0"):
        torch.__version__ = "1.13.1"
    import dgl
    from dgl.nn.pytorch import TAGConv
    from scipy import sparse

    print(f"dgl {dgl.__version__}")

    t, cfg = load("tagconv_dgl")
    a = t["adjacency"]
    graph = dgl.add_self_loop(dgl.from_scipy(sparse.csr_matrix(a.numpy())))  # the double loop
    conv = TAGConv(int(cfg["in_channels"]), int(cfg["out_channels"]), k=int(cfg["hops"])).double()
    with torch.no_grad():
        conv.lin.weight.copy_(t["param.lin.weight"])
        conv.lin.bias.copy_(t["param.lin.bias"])
    x = t["x"].clone().requires_grad_()
    out = conv(graph, x)
    (out * t["cotangent"]).sum().backward()
    # DGL computes its degree normalisation in float32 (in_degrees().float()), hence ~1e-7.
    report(
        "DGL TAGConv (add_self_loop on a looped graph) vs reference",
        {
            "out": rel(out, t["expected.output"]),
            "grad.x": rel(x.grad, t["grad.x"]),
            "grad.lin.weight": rel(conv.lin.weight.grad, t["grad.lin.weight"]),
            "grad.lin.bias": rel(conv.lin.bias.grad, t["grad.lin.bias"]),
        },
        1e-6,
    )

    for case in ("graph_nce_small", "graph_nce_released"):
        check_dgl_graph_loss(case, dgl, TAGConv, sparse)


def check_dgl_graph_loss(case, dgl, TAGConv, sparse):
    """The released GNNLoss flow with DGL graphs and DGL TAGConv modules (weights from the fixture):
    scipy CSR of [x x^T > t] -> DGL graph -> dgl.add_self_loop -> TAGConv -> x/||x||;
    Pool: sigmoid(proj) top-k, bool(A @ A) restricted to the kept nodes, a new DGL graph from it."""
    t, cfg = load(case)
    layers, n = int(cfg["num_layers"]), int(cfg["num_patches"])
    nc, th = int(cfg["nc"]), float(cfg["threshold"])
    params = {k[6:]: v.clone().requires_grad_() for k, v in t.items() if k.startswith("param.")}
    outs = [t[f"output_features.{i}"].clone().requires_grad_() for i in range(layers)]

    def conv(prefix, hops):
        c = TAGConv(nc, nc, k=hops).double()
        c.lin.weight = torch.nn.Parameter(params[prefix + ".lin.weight"])  # share the leaf
        c.lin.bias = torch.nn.Parameter(params[prefix + ".lin.bias"])
        return c

    def encode(c, adjacency_np, h):
        g = dgl.add_self_loop(dgl.from_scipy(sparse.csr_matrix(adjacency_np)))
        return ref.l2_normalize_plain(c(g, h))

    convs = {}
    total = 0.0
    for i in range(layers):
        for prefix, hops in ((f"gnn_{i}", 2), (f"gnn_pools_{i}.0", 1)):
            convs[prefix] = conv(prefix, hops)
            params[prefix + ".lin.weight"] = convs[prefix].lin.weight
            params[prefix + ".lin.bias"] = convs[prefix].lin.bias
    for i in range(layers):
        ids = t[f"patch_ids.{i}"]
        w, b = params[f"embed_{i}.weight"], params[f"embed_{i}.bias"]
        f_t = ref.l2_normalize_plain(ref.sample_patches(t[f"input_features.{i}"], ids) @ w.t() + b)
        f_s = ref.l2_normalize_plain(ref.sample_patches(outs[i], ids) @ w.t() + b)
        base = (f_t.detach() @ f_t.detach().t() > th).to(torch.int64).numpy()
        g_t = encode(convs[f"gnn_{i}"], base, f_t).detach()
        g_s = encode(convs[f"gnn_{i}"], base, f_s)
        loss = ref._graph_level_loss(g_s, g_t, 0.07, -10.0)
        scores = torch.sigmoid(
            g_t @ params[f"pools_{i}.0.proj.weight"].t() + params[f"pools_{i}.0.proj.bias"]
        ).squeeze()
        values, idx = torch.topk(scores, max(2, n // 4))
        un_g = torch.from_numpy(base).bool().float()
        un_g = (un_g @ un_g).bool().float()[idx][:, idx]
        pooled = (un_g / un_g.sum(1)).numpy()  # norm_g: only its non-zero pattern reaches DGL
        p_t = encode(convs[f"gnn_pools_{i}.0"], pooled, g_t[idx] * values[:, None]).detach()
        p_s = encode(convs[f"gnn_pools_{i}.0"], pooled, g_s[idx] * values[:, None])
        loss = loss + 0.5 * ref._graph_level_loss(p_s, p_t, 0.07, -10.0)
        total = total + loss / 2
    total = total / layers
    names = [k[5:] for k in t if k.startswith("grad.")]
    leaves = {**{f"output_features.{i}": o for i, o in enumerate(outs)}, **params}
    grads = torch.autograd.grad(total, [leaves[k] for k in names], allow_unused=True)
    diffs = {"loss": rel(total, t["expected.loss"])}
    worst_grad = max(
        rel(g if g is not None else torch.zeros_like(t["grad." + k]), t["grad." + k]) for k, g in zip(names, grads)
    )
    diffs[f"grads(max over {len(names)})"] = worst_grad
    report(f"DGL-built released GNNLoss flow vs {case}", diffs, 1e-6)


# --------------------------------------------------------------------------- PyG


def check_pyg():
    import torch_geometric
    from torch_geometric.nn import TAGConv, TopKPooling

    print(f"torch_geometric {torch_geometric.__version__}")

    t, cfg = load("tagconv_pyg")
    hops = int(cfg["hops"])
    conv = TAGConv(int(cfg["in_channels"]), int(cfg["out_channels"]), K=hops).double()
    with torch.no_grad():
        for l in range(hops + 1):
            conv.lins[l].weight.copy_(t[f"pyg.lins.{l}.weight"])
        conv.bias.copy_(t["pyg.bias"])
    x = t["x"].clone().requires_grad_()
    out = conv(x, t["edge_index"])
    (out * t["cotangent"]).sum().backward()
    report(
        "PyG TAGConv vs reference (DGL weight layout = cat of lins)",
        {
            "out": rel(out, t["expected.output"]),
            "grad.x": rel(x.grad, t["grad.x"]),
            "grad.lin.weight": rel(
                torch.cat([conv.lins[l].weight.grad for l in range(hops + 1)], 1), t["grad.lin.weight"]
            ),
            "grad.lin.bias": rel(conv.bias.grad, t["grad.lin.bias"]),
        },
        1e-12,
    )

    t, cfg = load("topk_pool_pyg")
    pool = TopKPooling(int(cfg["in_channels"]), ratio=float(cfg["ratio"])).double()
    weight = pool.select.weight if hasattr(pool, "select") else pool.weight
    with torch.no_grad():
        weight.copy_(t["pyg.weight"])
    x = t["x"].clone().requires_grad_()
    xo, edge_index, _, _, perm, score = pool(x, t["edge_index"])
    (xo * t["cotangent"]).sum().backward()
    k = perm.shape[0]
    dense = torch.zeros(k, k, dtype=torch.float64)
    dense[edge_index[0], edge_index[1]] = 1.0
    same_perm = torch.equal(perm, t["expected.indices"])
    report(
        "PyG TopKPooling vs reference",
        {
            "pooled": rel(xo, t["expected.pooled"]),
            "scores": rel(score, t["expected.scores"]),
            "perm": 0.0 if same_perm else 1.0,
            "pooled_adjacency": rel(dense, t["expected.pooled_adjacency"]),
            "grad.x": rel(x.grad, t["grad.x"]),
            "grad.proj.weight": rel(weight.grad, t["grad.proj.weight"]),
        },
        1e-12,
    )


# --------------------------------------------------------------------------- float32 replay


def check_float32():
    """How far a float32 evaluation of the same reference lands from the float64 fixture:
    the evidence behind the C++ float32 tolerance."""
    for case, fn in (
        ("graph_nce_small", "graph"),
        ("graph_nce_released", "graph"),
        ("patchnce_cut", "none"),
        ("patchnce_put_code", "column_sort"),
        ("patchnce_put_paper", "hardest_per_query"),
    ):
        t, cfg = load(case)
        layers = int(cfg["num_layers"])
        params = {k[6:]: v.float().requires_grad_() for k, v in t.items() if k.startswith("param.")}
        outs = [t[f"output_features.{i}"].float().requires_grad_() for i in range(layers)]
        ins = [t[f"input_features.{i}"].float() for i in range(layers)]
        ids = [t[f"patch_ids.{i}"] for i in range(layers)]
        if fn == "graph":
            loss = ref.graph_nce_loss(outs, ins, ids, params, float(cfg["threshold"]))
        else:
            loss = ref.patch_nce_loss(outs, ins, ids, params, pruning=fn, k=int(cfg["hard_negatives"]))
        leaves = {**{f"output_features.{i}": o for i, o in enumerate(outs)}, **params}
        names = [k[5:] for k in t if k.startswith("grad.")]
        grads = torch.autograd.grad(loss, [leaves[k] for k in names], allow_unused=True)
        worst = max(rel(g, t["grad." + k]) for k, g in zip(names, grads))
        report(
            f"float32 reference vs float64 fixture {case}",
            {"loss": rel(loss, t["expected.loss"]), "grads": worst},
            1e-5,
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--float32", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, fn in (("DGL", check_dgl), ("PyG", check_pyg)):
        try:
            fn()
        except ImportError as e:
            print(f"[SKIPPED] {name}: {e}")
    if args.float32:
        check_float32()
    print("all checks passed" if not failures else "FAILED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

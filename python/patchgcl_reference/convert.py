"""Name mapping from checkpoints of the authors' Python code to patchgcl's C++ parameter names
(docs/reference-compatibility.md). `scripts/convert-reference-weights.py` is its command line;
`tests/reference/generate_fixtures.py` runs it on a state dict under the released names.

  PatchGCL GNNLoss                      patchgcl::GraphNCELoss
    embed_i.linear.{weight,bias}          embed_i.{weight,bias}
    gnn_i.conv1.lin.{weight,bias}         gnn_i.lin.{weight,bias}
    pools_i.l.proj.{weight,bias}          pools_i.l.proj.{weight,bias}
    gnn_pools_i.l.conv1.lin.{weight,bias} gnn_pools_i.l.lin.{weight,bias}
  CUT PatchSampleF mlp_i.{0,2}.{weight,bias}  -> patchgcl::PatchNCELoss, same names
  DGL TAGConv lin.{weight,bias}               -> patchgcl::TAGConv, same names
  PyG TAGConv lins.l.weight, bias             -> lin.weight = cat_l(lins.l.weight, dim=1), lin.bias
  PyG TopKPooling weight (or select.weight)   -> proj.weight (TopKPool: tanh, divide_by_norm, no bias)
"""

import re

import torch

KINDS = ["auto", "patchgcl", "cut", "dgl_tagconv", "pyg_tagconv", "pyg_topk"]

_PATCHGCL = [
    (re.compile(r"^embed_(\d+)\.linear\.(weight|bias)$"), r"embed_\1.\2"),
    (re.compile(r"^gnn_(\d+)\.conv1\.lin\.(weight|bias)$"), r"gnn_\1.lin.\2"),
    (re.compile(r"^pools_(\d+)\.(\d+)\.proj\.(weight|bias)$"), r"pools_\1.\2.proj.\3"),
    (re.compile(r"^gnn_pools_(\d+)\.(\d+)\.conv1\.lin\.(weight|bias)$"), r"gnn_pools_\1.\2.lin.\3"),
]
_CUT = re.compile(r"^mlp_(\d+)\.(0|2)\.(weight|bias)$")
# The inverse of _PATCHGCL: patchgcl::GraphNCELoss names to the released GNNLoss's.
_PATCHGCL_RELEASED = [
    (re.compile(r"^embed_(\d+)\.(weight|bias)$"), r"embed_\1.linear.\2"),
    (re.compile(r"^gnn_(\d+)\.lin\.(weight|bias)$"), r"gnn_\1.conv1.lin.\2"),
    (re.compile(r"^pools_(\d+)\.(\d+)\.proj\.(weight|bias)$"), r"pools_\1.\2.proj.\3"),
    (re.compile(r"^gnn_pools_(\d+)\.(\d+)\.lin\.(weight|bias)$"), r"gnn_pools_\1.\2.conv1.lin.\3"),
]


def detect(state):
    keys = set(state)
    if any(k.startswith("embed_") for k in keys):
        return "patchgcl"
    if any(k.startswith("mlp_") for k in keys):
        return "cut"
    if any(k.startswith("lins.") for k in keys):
        return "pyg_tagconv"
    if keys <= {"lin.weight", "lin.bias"}:
        return "dgl_tagconv"
    if keys in ({"weight"}, {"select.weight"}):
        return "pyg_topk"
    raise ValueError("cannot tell which reference module these weights are from: " + ", ".join(sorted(keys)))


def convert(state, kind="auto"):
    """Returns (tensors with patchgcl names, config) for a reference state dict."""
    state = {re.sub(r"^module\.", "", k): v.detach().cpu() for k, v in state.items()}
    kind = detect(state) if kind == "auto" else kind
    out, config = {}, {"source": kind}
    if kind == "patchgcl":
        for k, v in state.items():
            for pattern, repl in _PATCHGCL:
                if pattern.match(k):
                    out[pattern.sub(repl, k)] = v
                    break
            else:
                raise ValueError(f"unexpected PatchGCL GNNLoss tensor {k!r}")
        layers = sorted(int(m.group(1)) for k in out for m in [re.match(r"^embed_(\d+)\.weight$", k)] if m)
        config["in_channels"] = ",".join(str(out[f"embed_{i}.weight"].shape[1]) for i in layers)
        config["nc"] = out["embed_0.weight"].shape[0]
        config["pooling_levels"] = len({k.split(".")[1] for k in out if k.startswith("pools_0.")})
    elif kind == "cut":
        for k, v in state.items():
            if not _CUT.match(k):
                raise ValueError(f"unexpected PatchSampleF tensor {k!r}")
            out[k] = v
        layers = sorted(int(_CUT.match(k).group(1)) for k in out if k.endswith(".0.weight"))
        config["in_channels"] = ",".join(str(out[f"mlp_{i}.0.weight"].shape[1]) for i in layers)
        config["nc"] = out["mlp_0.2.weight"].shape[0]
    elif kind == "dgl_tagconv":
        out = dict(state)
    elif kind == "pyg_tagconv":
        hops = len([k for k in state if re.match(r"^lins\.\d+\.weight$", k)])
        out["lin.weight"] = torch.cat([state[f"lins.{l}.weight"] for l in range(hops)], dim=1)
        if "bias" in state:
            out["lin.bias"] = state["bias"]
        config["hops"] = hops - 1
    elif kind == "pyg_topk":
        out["proj.weight"] = state.get("select.weight", state.get("weight")).reshape(1, -1)
        config["activation"], config["bias"], config["divide_by_norm"] = "tanh", "false", "true"
    else:
        raise ValueError(kind)
    return out, config


def to_released(tensors):
    """GraphNCELoss tensors under patchgcl's names, renamed as the released GNNLoss's state dict
    has them (DataParallel's `module.` prefix included): what `convert` takes back."""
    out = {}
    for k, v in tensors.items():
        for pattern, repl in _PATCHGCL_RELEASED:
            if pattern.match(k):
                out["module." + pattern.sub(repl, k)] = v
                break
        else:
            raise ValueError(f"unexpected GraphNCELoss tensor {k!r}")
    return out

"""The authors' GNNLoss checkpoints (jcy132/PatchGCL netF) name some tensors one level deeper
than patchgcl does: `embed_i.linear.*`, `gnn_i.conv1.lin.*`, `gnn_pools_i.l.conv1.lin.*`
(patchgcl: `embed_i.*`, `gnn_i.lin.*`, `gnn_pools_i.l.lin.*`; docs/reference-compatibility.md).
GraphNCELoss.load_state_dict renames them, so a released netF state dict loads as it is. CUT's
PatchSampleF names (`mlp_i.{0,2}.*`) are patchgcl's already. A leading `module.`
(DataParallel) is dropped."""

import re

_GNN_LOSS = [
    (re.compile(r"^embed_(\d+)\.linear\.(weight|bias)$"), r"embed_\1.\2"),
    (re.compile(r"^gnn_(\d+)\.conv1\.lin\.(weight|bias)$"), r"gnn_\1.lin.\2"),
    (re.compile(r"^gnn_pools_(\d+)\.(\d+)\.conv1\.lin\.(weight|bias)$"), r"gnn_pools_\1.\2.lin.\3"),
]


def patchgcl_name(name):
    """A released tensor name -> patchgcl's (other names unchanged)."""
    name = re.sub(r"^module\.", "", name)
    for pattern, replacement in _GNN_LOSS:
        if pattern.match(name):
            return pattern.sub(replacement, name)
    return name


def rename_on_load(state_dict, prefix, *args):
    """load_state_dict pre-hook: renames the entries under `prefix` in place."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = prefix + patchgcl_name(key[len(prefix) :])
        if new != key:
            state_dict[new] = state_dict.pop(key)

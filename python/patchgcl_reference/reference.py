"""Independent restatement, in plain torch, of the published implementations that patchgcl
claims to reproduce. Nothing here imports DGL or PyG; check_against_libraries.py compares these
functions with the real packages where they are installed.

Sources restated (read, not copied):
  * jcy132/PatchGCL            models/PatchGCL.py   (GNNLoss, Embed, Encoder, Pool, top_k_graph)
  * dmlc/dgl                   nn/pytorch/conv/tagconv.py, dgl.add_self_loop
  * taesungp/contrastive-unpaired-translation  models/patchnce.py, models/networks.py (PatchSampleF)
  * YupeiLin2388/Exploring-Negatives-...       models/patchnce.py (PUT pruning)
  * pyg-team/pytorch_geometric nn/conv/tag_conv.py, nn/pool/topk_pool.py

Parameters are passed as a dict keyed by the patchgcl C++ parameter names (see api_spec), so the
fixtures and the C++ tests share one vocabulary.
"""

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------- common pieces


def sample_patches(feature_map, patch_ids):
    """[1, C, H, W] -> [N, C]: location id = h * W + w, as permute(0,2,3,1).flatten(1,2)[:, ids]."""
    return feature_map.permute(0, 2, 3, 1).flatten(1, 2)[:, patch_ids, :].flatten(0, 1)


def l2_normalize_plain(x):
    """PatchGCL's Normalize: x / ||x||, no epsilon (dim 1 of [N, C])."""
    return x / x.pow(2).sum(1, keepdim=True).pow(0.5)


def l2_normalize_cut(x):
    """CUT's Normalize: x / (||x|| + 1e-7)."""
    return x / (x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)


def info_nce(query, key, tau=0.07, diagonal=-10.0, pruning="none", k=5):
    """Per-row cross-entropy with the positive in column 0.

    Row i: positive <query_i, key_i>; negatives <query_i, key_j> with the diagonal replaced by
    `diagonal`. `pruning`:
      * "none"            all N negatives (CUT, PatchGCL);
      * "column_sort"     PUT's released code: sort the [N, N] negative block along dim 0
                          (descending, each column over the queries) and keep its first k columns;
      * "hardest_per_query" PUT's paper: each row keeps its own k largest negatives.
    Returns the per-row losses [N].
    """
    n = query.shape[0]
    pos = (query * key).sum(1, keepdim=True)
    neg = query @ key.t()
    neg = neg.masked_fill(torch.eye(n, dtype=torch.bool), diagonal)
    if pruning == "column_sort":
        neg = neg.sort(dim=0, descending=True)[0][:, :k]
    elif pruning == "hardest_per_query":
        neg = neg.topk(k, dim=1)[0]
    elif pruning != "none":
        raise ValueError(pruning)
    logits = torch.cat([pos, neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long), reduction="none")


# --------------------------------------------------------------------------- graph layers


def dgl_tagconv(x, m, weight, bias):
    """DGL TAGConv on the graph whose (multi-)adjacency is m (m[u, v] = number of edges u -> v).

    norm = in_degree^-1/2 (in-degree counts parallel edges; clamped to >= 1);
    h_{l+1} = norm * (m^T (norm * h_l));  out = [h_0, h_1, ..., h_K] @ weight^T + bias,
    weight: [out, (K+1) * in] (one Linear on the concatenation).
    """
    in_ch = x.shape[-1]
    hops = weight.shape[1] // in_ch - 1
    norm = m.sum(0).clamp(min=1).pow(-0.5).unsqueeze(-1)
    stack = [x]
    for _ in range(hops):
        stack.append(norm * (m.t() @ (norm * stack[-1])))
    out = torch.cat(stack, dim=-1) @ weight.t()
    return out + bias if bias is not None else out


def pyg_tagconv(x, edge_index, lin_weights, bias, normalize=True):
    """PyG TAGConv: out = sum_l lins[l](S^l x) + bias, S from gcn_norm without added self loops:
    deg = in-degree over edge_index[1]; edge weight deg^-1/2[src] * deg^-1/2[dst] (inf -> 0)."""
    n = x.shape[0]
    src, dst = edge_index
    w = torch.ones(src.shape[0], dtype=x.dtype)
    if normalize:
        deg = torch.zeros(n, dtype=x.dtype).index_add_(0, dst, w)
        dis = deg.pow(-0.5)
        dis = dis.masked_fill(torch.isinf(dis), 0.0)
        w = dis[src] * w * dis[dst]
    out = x @ lin_weights[0].t()
    h = x
    for lw in lin_weights[1:]:
        h = torch.zeros_like(h).index_add_(0, dst, w.unsqueeze(-1) * h[src])
        out = out + h @ lw.t()
    return out + bias if bias is not None else out


def pyg_topk_pool(x, edge_index, weight, ratio):
    """PyG TopKPooling (min_score None, tanh): score = tanh((x . p) / ||p||); keep
    k = ceil(ratio * N) (or ratio itself if int) nodes by descending score; x' = x[perm] * score[perm];
    edges: induced subgraph, relabelled to positions in perm."""
    n = x.shape[0]
    score = torch.tanh((x * weight).sum(-1) / weight.norm(p=2, dim=-1))
    k = ratio if isinstance(ratio, int) else int(torch.tensor(ratio * n).ceil().item())
    perm = score.topk(k, sorted=True)[1]
    x_out = x[perm] * score[perm].unsqueeze(-1)
    mask = torch.full((n,), -1, dtype=torch.long)
    mask[perm] = torch.arange(k)
    row, col = mask[edge_index[0]], mask[edge_index[1]]
    keep = (row >= 0) & (col >= 0)
    return x_out, torch.stack([row[keep], col[keep]]), perm, score[perm]


# --------------------------------------------------------------------------- PatchGCL graph loss


def _encoder(h, adjacency, params, prefix):
    """PatchGCL Encoder: DGL TAGConv on dgl.add_self_loop(graph(adjacency)), then x/||x||.
    adjacency already has 1 on its diagonal, so the message-passing matrix is A + I."""
    m = adjacency + torch.eye(adjacency.shape[0], dtype=adjacency.dtype)
    return l2_normalize_plain(dgl_tagconv(h, m, params[prefix + ".lin.weight"], params[prefix + ".lin.bias"]))


def _graph_level_loss(out_nodes, in_nodes, tau, diagonal):
    """calc_gnn's two-way InfoNCE: rows = input nodes vs output nodes, plus the transpose.
    in_nodes are the detached keys. Each direction is a mean over nodes; the two are summed."""
    n = out_nodes.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    pos = (in_nodes * out_nodes).sum(1, keepdim=True)
    neg_a = (in_nodes @ out_nodes.t()).masked_fill(eye, diagonal)
    neg_b = (out_nodes @ in_nodes.t()).masked_fill(eye, diagonal)
    target = torch.zeros(n, dtype=torch.long)
    return F.cross_entropy(torch.cat([pos, neg_a], 1) / tau, target) + F.cross_entropy(
        torch.cat([pos, neg_b], 1) / tau, target
    )


def graph_nce_loss(
    output_features,
    input_features,
    patch_ids,
    params,
    threshold=0.1,
    pooling_levels=1,
    down_scale=4,
    level_weights=(1.0, 0.5),
    tau=0.07,
    diagonal=-10.0,
    trace=None,
):
    """The released GNNLoss.forward (batch size 1) with explicit patch ids.

    output_features: G(x) layers [1, C_i, H_i, W_i] (the query side, gradients flow);
    input_features: x layers (the key side). Returns the scalar loss.
    `trace`, if a dict, receives intermediate tensors (adjacency, pooled indices) for tests.
    """
    if pooling_levels > 1:
        # The released Pool casts the pooled (already normalised, < 1) weights with
        # astype(np.int32) before a second pooling level, which zeroes most of that adjacency.
        # Only one level is used in the published runs; we do not restate that path.
        raise NotImplementedError("the released code is only meaningful for pooling_levels <= 1")
    total = 0.0
    for i, (fs, ft) in enumerate(zip(output_features, input_features)):
        ids = patch_ids[i]
        n = ids.shape[0]
        w, b = params[f"embed_{i}.weight"], params[f"embed_{i}.bias"]
        in_embed = l2_normalize_plain(sample_patches(ft, ids) @ w.t() + b)
        out_embed = l2_normalize_plain(sample_patches(fs, ids) @ w.t() + b)

        x = in_embed.detach()
        adjacency = (x @ x.t() > threshold).to(x.dtype)  # strict '>', diagonal is 1
        in_nodes = _encoder(in_embed, adjacency, params, f"gnn_{i}").detach()
        out_nodes = _encoder(out_embed, adjacency, params, f"gnn_{i}")
        loss = _graph_level_loss(out_nodes, in_nodes, tau, diagonal)
        if trace is not None:
            trace[f"adjacency_{i}"] = adjacency
        for level in range(pooling_levels):
            keep = n // (down_scale * 2**level)
            p, pb = params[f"pools_{i}.{level}.proj.weight"], params[f"pools_{i}.{level}.proj.bias"]
            scores = torch.sigmoid(in_nodes @ p.t() + pb).squeeze(-1)
            values, idx = torch.topk(scores, max(2, keep))
            pooled_in = in_nodes[idx] * values.unsqueeze(-1)
            pooled_out = out_nodes[idx] * values.unsqueeze(-1)
            two_hop = ((adjacency @ adjacency) != 0).to(adjacency.dtype)
            adjacency = two_hop[idx][:, idx]
            prefix = f"gnn_pools_{i}.{level}"
            in_nodes = _encoder(pooled_in, adjacency, params, prefix).detach()
            out_nodes = _encoder(pooled_out, adjacency, params, prefix)
            loss = loss + level_weights[level + 1] * _graph_level_loss(out_nodes, in_nodes, tau, diagonal)
            if trace is not None:
                trace[f"pool_indices_{i}.{level}"] = idx
                trace[f"pool_scores_{i}.{level}"] = values
                trace[f"pooled_adjacency_{i}.{level}"] = adjacency
        total = total + loss / (pooling_levels + 1)
    return total / len(output_features)


# --------------------------------------------------------------------------- CUT / PUT PatchNCE


def patch_nce_loss(output_features, input_features, patch_ids, params, tau=0.07, diagonal=-10.0, pruning="none", k=5):
    """CUT's calculate_NCE_loss with PatchSampleF(use_mlp=True) and PatchNCELoss (lambda 1):
    per layer, q = Normalize(mlp(G(x) patches)), k = Normalize(mlp(x patches)).detach(),
    loss = mean over patches; total = mean over layers. PUT replaces the negatives as in info_nce."""
    total = 0.0
    for i, (fs, ft) in enumerate(zip(output_features, input_features)):

        def head(v):
            h = torch.relu(v @ params[f"mlp_{i}.0.weight"].t() + params[f"mlp_{i}.0.bias"])
            return l2_normalize_cut(h @ params[f"mlp_{i}.2.weight"].t() + params[f"mlp_{i}.2.bias"])

        q = head(sample_patches(fs, patch_ids[i]))
        key = head(sample_patches(ft, patch_ids[i])).detach()
        total = total + info_nce(q, key, tau, diagonal, pruning, k).mean()
    return total / len(output_features)

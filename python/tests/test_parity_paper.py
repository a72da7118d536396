"""preset="paper" (GraphNCELossOptions::paper) against the text of the paper, restated here from
patchgcl_reference's pieces (patchgcl_reference has the released code only): Eq. 1 with `>=`,
one self loop, TAGConv without bias (DGL's, Eq. 2-3), Eq. 4 as written (z_i against v_j, no
temperature, no -10 diagonal), sigmoid(p^T z) top-K without bias (Eq. 5-6), the induced pooled
adjacency, an L-hop pooled TAGConv (Eq. 7-8), Eq. 10's plain sum of levels. Float64, relative 1e-9."""

import patchgcl
import torch
import torch.nn.functional as F
from test_parity import close


def paper_graph_loss(outs, ins, ids, params, threshold=0.1, down_scale=4):
    from patchgcl_reference import reference as ref

    def encoder(h, adjacency, prefix):  # M = A (its diagonal is already 1): one self loop
        return ref.l2_normalize_plain(ref.dgl_tagconv(h, adjacency, params[prefix + ".lin.weight"], None))

    def eq4(v, z):  # rows z_i against v_j, tau = 1, the positive's duplicate dropped
        return F.cross_entropy(z @ v.t(), torch.arange(v.shape[0]))

    total = 0.0
    for i, (fs, ft) in enumerate(zip(outs, ins)):
        w, b = params[f"embed_{i}.weight"], params[f"embed_{i}.bias"]
        out_embed = ref.l2_normalize_plain(ref.sample_patches(fs, ids[i]) @ w.t() + b)
        in_embed = ref.l2_normalize_plain(ref.sample_patches(ft, ids[i]) @ w.t() + b).detach()
        adjacency = (in_embed @ in_embed.t() >= threshold).to(in_embed.dtype)
        z = encoder(in_embed, adjacency, f"gnn_{i}").detach()
        v = encoder(out_embed, adjacency, f"gnn_{i}")
        loss = eq4(v, z)
        scores = torch.sigmoid(z @ params[f"pools_{i}.0.proj.weight"].t()).squeeze(-1)
        values, idx = torch.topk(scores, max(2, ids[i].shape[0] // down_scale))
        pooled_adjacency = adjacency[idx][:, idx]
        z = encoder(z[idx] * values.unsqueeze(-1), pooled_adjacency, f"gnn_pools_{i}.0").detach()
        v = encoder(v[idx] * values.unsqueeze(-1), pooled_adjacency, f"gnn_pools_{i}.0")
        total = total + loss + eq4(v, z)
    return total / len(outs)


def test_graph_nce_paper_preset_is_the_text(fixtures):
    tensors, cfg = fixtures.CASES["graph_nce_small"]()  # its well-posed inputs; the weights are drawn here
    torch.manual_seed(11)
    module = patchgcl.GraphNCELoss([3, 5, 8], preset="paper", num_patches=16, nc=16, init_std=0.3).double()
    assert "gnn_pools_0.0.lin.weight" in dict(module.named_parameters())
    params = {k: p.detach().clone().requires_grad_() for k, p in module.named_parameters()}
    outs = [tensors[f"output_features.{i}"].detach().clone().requires_grad_() for i in range(3)]
    outs_ref = [o.detach().clone().requires_grad_() for o in outs]
    ins = [tensors[f"input_features.{i}"].detach() for i in range(3)]
    ids = [tensors[f"patch_ids.{i}"] for i in range(3)]

    expected = paper_graph_loss(outs_ref, ins, ids, params)
    expected.backward()
    loss = module(outs, ins, ids)
    loss.backward()
    close(loss.detach(), expected.detach(), "loss")
    for i in range(3):
        close(outs[i].grad, outs_ref[i].grad, f"d loss / d output_features.{i}")
    for name, p in module.named_parameters():
        close(p.grad, params[name].grad, f"d loss / d {name}")

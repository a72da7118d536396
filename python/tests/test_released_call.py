"""The authors' model with its loss swapped for patchgcl's, nothing else edited: a released netF
state dict loaded as it is, and the released call `netF(feat_q, feat_k, num_patches)` with an int
(the patches drawn per layer for this call), against python/patchgcl_reference, in float64."""

import patchgcl
import patchgcl.functional as F
import pytest
import torch
from patchgcl_reference import convert, reference

SEED = 11


def drawn_ids(feature_maps, num_patches):
    """The ids the loss draws under torch's generator: random_patch_ids per layer, in order."""
    return [F.random_patch_ids(f, num_patches) for f in feature_maps]


def test_graph_nce_released_call_with_num_patches(fixtures):
    tensors, cfg = fixtures.CASES["graph_nce_small"]()
    params = {k[len("param.") :]: v.detach() for k, v in tensors.items() if k.startswith("param.")}
    feat_q = [tensors[f"output_features.{i}"].detach() for i in range(3)]
    feat_k = [tensors[f"input_features.{i}"].detach() for i in range(3)]
    netF = patchgcl.GraphNCELoss([3, 5, 8], nc=int(cfg["nc"])).double()  # num_patches: the call's
    netF.load_state_dict(convert.to_released(params))  # DataParallel's `module.` and the released names
    torch.manual_seed(SEED)
    loss = netF(feat_q, feat_k, 16)
    torch.manual_seed(SEED)
    expected = reference.graph_nce_loss(feat_q, feat_k, drawn_ids(feat_k, 16), params)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)
    torch.manual_seed(SEED)
    assert netF(feat_q, feat_k, 12).item() != loss.item()  # the int is this call's patch count


def test_patch_nce_released_call_with_num_patches(fixtures):
    tensors, cfg = fixtures.CASES["patchnce_cut"]()
    layers = len([k for k in tensors if k.startswith("output_features.")])
    params = {k[len("param.") :]: v.detach() for k, v in tensors.items() if k.startswith("param.")}
    feat_q = [tensors[f"output_features.{i}"].detach() for i in range(layers)]
    feat_k = [tensors[f"input_features.{i}"].detach() for i in range(layers)]
    netF = patchgcl.PatchNCELoss([f.shape[1] for f in feat_q], nc=int(cfg["nc"])).double()
    netF.load_state_dict(params)  # CUT's PatchSampleF names are patchgcl's
    n = min(8, *(f.shape[2] * f.shape[3] for f in feat_q))
    torch.manual_seed(SEED)
    loss = netF(feat_q, feat_k, n)
    torch.manual_seed(SEED)
    expected = reference.patch_nce_loss(feat_q, feat_k, drawn_ids(feat_k, n), params)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)


def test_patch_ids_still_go_as_the_third_argument():
    netF = patchgcl.PatchNCELoss([4], num_patches=16, nc=8)
    q, k = [torch.randn(2, 4, 8, 8)], [torch.randn(2, 4, 8, 8)]
    ids = [torch.randperm(64)[:16]]
    assert netF(q, k, ids).item() == netF(q, k, num_patches_or_patch_ids=ids).item()

"""patchgcl.functional: values pinned on small cases, gradcheck in float64."""

import patchgcl.functional as F
import pytest
import torch
from torch.autograd import gradcheck


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_cosine_adjacency_is_eq1():
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    assert torch.equal(F.cosine_adjacency(f, threshold=0.5), expected)
    # cos = 0 between orthogonal nodes (exactly: every product has a zero factor): kept by >= 0, dropped by > 0
    assert F.cosine_adjacency(f, threshold=0.0)[0, 2] == 1
    assert F.cosine_adjacency(f, threshold=0.0, comparison="greater")[0, 2] == 0
    assert F.cosine_adjacency(f, threshold=0.5, diagonal="zero").diagonal().sum() == 0


def test_normalize_adjacency_is_symmetric_gcn_normalisation():
    a = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(F.normalize_adjacency(a), torch.full((2, 2), 0.5, dtype=torch.float64))
    # self_loops="double": M = A + I on a diagonal of ones: d = 3, Abar = M / 3
    m = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    expected = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64) / 3
    assert torch.allclose(F.normalize_adjacency(m, self_loops="double"), expected)


def test_info_nce_matches_cross_entropy_with_the_diagonal_dropped():
    v, z = F.l2_normalize(rand(6, 4, seed=1)), F.l2_normalize(rand(6, 4, seed=2))
    logits = v @ z.t() / 0.07
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(6))
    assert F.info_nce(v, z, diagonal_value=float("-inf")).item() == pytest.approx(expected.item(), rel=1e-12)
    both = F.info_nce(v, z, diagonal_value=float("-inf"), direction="both")
    reverse = torch.nn.functional.cross_entropy(logits.t(), torch.arange(6))
    assert both.item() == pytest.approx((expected + reverse).item(), rel=1e-12)
    assert F.info_nce(v, z, reduction="none").shape == (6,)


def test_l2_normalize_modes():
    x = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert torch.allclose(F.l2_normalize(x), x / 5)
    assert torch.allclose(F.l2_normalize(x, eps=1.0, mode="add"), x / 6)


def test_patches_and_hops():
    fm = rand(2, 3, 4, 5)
    ids = torch.tensor([0, 7, 19])
    nodes = F.sample_patches(fm, ids)
    assert torch.equal(nodes, fm.flatten(2)[:, :, ids].transpose(1, 2))
    assert F.random_patch_ids(fm, 20).sort()[0].tolist() == list(range(20))
    abar = F.normalize_adjacency(F.cosine_adjacency(nodes))
    hops = F.hop_features(nodes, abar, 2)
    assert torch.allclose(hops[..., 3:6], abar @ nodes) and torch.allclose(hops[..., 6:], abar @ abar @ nodes)
    out, inp = F.shared_hop_features(nodes, nodes * 2, abar, 1)
    assert torch.allclose(out, F.hop_features(nodes, abar, 1)) and torch.allclose(inp, 2 * out)


def test_laplacian():
    abar = F.normalize_adjacency(F.cosine_adjacency(rand(8, 3, seed=3)))
    assert torch.allclose(F.normalized_laplacian(abar), torch.eye(8, dtype=torch.float64) - abar)
    values, vectors = F.laplacian_eigenvectors(abar, 3)
    assert values.shape == (3,) and vectors.shape == (8, 3)
    assert torch.allclose(F.normalized_laplacian(abar) @ vectors, vectors * values)


@pytest.mark.parametrize("mode", ["clamp", "add"])
def test_gradcheck_l2_normalize(mode):
    assert gradcheck(lambda x: F.l2_normalize(x, eps=1e-7, mode=mode), (rand(5, 4).requires_grad_(),))


def test_gradcheck_info_nce():
    z = F.l2_normalize(rand(2, 6, 4, seed=2))
    for options in [
        {},
        {"direction": "both"},
        {"negatives": "whole_batch"},
        {"pruning": "hardest_per_anchor", "hard_negatives": 3},
    ]:
        assert gradcheck(lambda v: F.info_nce(v, z, **options), (rand(2, 6, 4, seed=1).requires_grad_(),)), options


def test_gradcheck_graph_ops():
    x = rand(6, 3, seed=4).requires_grad_()
    a = (F.cosine_adjacency(rand(6, 3, seed=5)) * (1 + rand(6, 6, seed=6).abs())).requires_grad_()
    assert gradcheck(lambda a: F.normalize_adjacency(a, normalization="random_walk"), (a,))
    assert gradcheck(lambda a: F.normalize_adjacency(a), (a,))
    abar = F.normalize_adjacency(a.detach()).requires_grad_()
    assert gradcheck(lambda x, abar: F.hop_features(x, abar, 2), (x, abar))
    assert gradcheck(lambda x: F.shared_hop_features(x, x.detach() * 2, abar.detach(), 2)[0], (x,))
    assert gradcheck(F.normalized_laplacian, (abar,))
    fm = rand(1, 3, 4, 4).requires_grad_()
    assert gradcheck(lambda fm: F.sample_patches(fm, torch.tensor([1, 5, 5, 15])), (fm,))

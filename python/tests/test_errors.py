"""The C++ checks arrive as RuntimeError with the C++ messages."""

import patchgcl
import patchgcl.functional as F
import pytest
import torch


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: patchgcl.GraphNCELoss([4], hops=-1),
            "GraphNCELoss: `hops` and `pooled_hops` must be >= 0, got -1 and 1",
        ),
        (
            lambda: patchgcl.GraphNCELoss([4], adjacency=dict(threshold=2.0)),
            "GraphNCELoss: `adjacency.threshold` must be in [-1, 1] (a cosine), got 2",
        ),
        (
            lambda: patchgcl.GraphNCELoss([4], pooling_levels=2),
            "GraphNCELoss: `level_weights` needs pooling_levels + 1 = 3 entries, got 2",
        ),
        (lambda: patchgcl.GraphNCELoss([4], hopz=1), "GraphNCELoss: unknown option `hopz`"),
        (
            lambda: patchgcl.GraphNCELoss([4], preset="put"),
            "GraphNCELoss: `preset` must be reference or paper, got 'put'",
        ),
        (
            lambda: patchgcl.PatchNCELoss([4], info_nce=dict(pruning="some")),
            "PatchNCELoss: option `info_nce.pruning` must be one of none, hardest_per_anchor, reference_column_sort, got 'some'",
        ),
        (
            lambda: F.cosine_adjacency(torch.randn(3)),
            "cosine_adjacency: `features` must be [B, N, C] or [N, C] (rank 2 or 3), got shape [3]",
        ),
        (
            lambda: F.info_nce(torch.randn(4, 3), torch.randn(5, 3)),
            "info_nce: `output` and `input` must have the same shape, got [4, 3] and [5, 3]",
        ),
    ],
)
def test_checks_raise_runtime_error_with_the_cpp_message(make, message):
    with pytest.raises(RuntimeError) as info:
        make()
    assert str(info.value).splitlines()[0] == message


def test_forward_checks():
    loss_fn = patchgcl.GraphNCELoss([4], num_patches=8, nc=8)
    with pytest.raises(RuntimeError, match=r"GraphNCELoss: `output_features\[0\]` must have 4 channels"):
        loss_fn([torch.randn(1, 5, 4, 4)], [torch.randn(1, 5, 4, 4)])
    with pytest.raises(RuntimeError, match=r"random_patch_ids: `num_patches` must be in \[1, H\*W = 4\]"):
        loss_fn([torch.randn(1, 4, 2, 2)], [torch.randn(1, 4, 2, 2)])
    with pytest.raises(RuntimeError, match=r"`output_features\[0\]` contains NaN or Inf"):
        loss_fn([torch.full((1, 4, 4, 4), float("nan"))], [torch.randn(1, 4, 4, 4)])
    # the module still works after an error (its lock was released)
    assert torch.isfinite(loss_fn([torch.randn(1, 4, 4, 4)], [torch.randn(1, 4, 4, 4)]))


def test_option_types():
    with pytest.raises(TypeError, match="option `hops` must be a bool, number, string"):
        patchgcl.GraphNCELoss([4], hops=object())
    with pytest.raises(RuntimeError, match="GraphNCELoss: option `hops` must be an int, got Double"):
        patchgcl.GraphNCELoss([4], hops=1.5)
    with pytest.raises(RuntimeError, match="GraphNCELoss: option `score_activation` must be a string, got Int"):
        patchgcl.GraphNCELoss([4], score_activation=1)
    with pytest.raises(RuntimeError, match="PatchNCELoss: option `use_mlp` must be a bool, got Int"):
        patchgcl.PatchNCELoss([4], use_mlp=1)
    with pytest.raises(RuntimeError, match="GraphNCELoss: option `level_weights` must be a list of numbers"):
        patchgcl.GraphNCELoss([4], level_weights=True)
    with pytest.raises((TypeError, RuntimeError), match="temprature"):
        F.info_nce(torch.randn(4, 3), torch.randn(4, 3), temprature=0.1)  # a typed schema: no such keyword
    # an int where a float is expected is that float
    assert patchgcl.GraphNCELoss([4], adjacency=dict(threshold=0), level_weights=[1, 1]) is not None


def test_the_python_modules_document_the_cpp_option_names():
    for cls in (patchgcl.GraphNCELoss, patchgcl.PatchNCELoss):
        for name in cls.option_names():
            assert name.split(".")[-1] in cls.__doc__, (cls.__name__, name)

"""Autograd and fake kernels of the functional ops (csrc/ops_functional.cpp). Each op is an
opaque C++ kernel; a differentiable one has an `<op>_backward(grad_outputs, <the op's arguments>)`
op that runs the C++ function again with autograd and returns one gradient per tensor argument.
The fake kernels give the output shapes and dtypes for torch.compile (torch >= 2.4)."""

import torch

from ._ops import below_autograd, ops

# The ops without a gradient (an adjacency of thresholds; integer ids).
NOT_DIFFERENTIABLE = ("cosine_adjacency", "random_patch_ids")
DIFFERENTIABLE = (
    "normalize_adjacency",
    "info_nce",
    "l2_normalize",
    "sample_patches",
    "hop_features",
    "shared_hop_features",
    "normalized_laplacian",
    "laplacian_eigenvectors",
)


class _OpFunction(torch.autograd.Function):
    """An op below autograd; its backward is the op's `<op>_backward` (None: no gradient)."""

    @staticmethod
    def forward(ctx, op, backward, kwargs, *args):
        with below_autograd():
            out = op(*args, **kwargs)
        outputs = out if isinstance(out, tuple) else (out,)
        if backward is None:
            ctx.mark_non_differentiable(*outputs)
        ctx.backward, ctx.kwargs = backward, kwargs
        ctx.tensor_at = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        ctx.others = [None if isinstance(a, torch.Tensor) else a for a in args]
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_at])
        return out

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = list(ctx.others)
        for i, t in zip(ctx.tensor_at, ctx.saved_tensors):
            args[i] = t
        grads = ctx.backward(list(grad_outputs), *args, **ctx.kwargs)
        result = [None] * len(args)
        for i, g in zip(ctx.tensor_at, grads):
            result[i] = g if args[i].is_floating_point() else None
        return (None, None, None, *result)


def _autograd_kernel(op, backward):
    def kernel(*args, **kwargs):
        return _OpFunction.apply(op, backward, kwargs, *args)

    return kernel


def _dtype(t):
    """The compute precision of the C++ functions: float64 stays, anything else is float32."""
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _hops(x, hops):
    return x.new_empty((*x.shape[:-1], x.shape[-1] * (hops + 1)), dtype=_dtype(x))


def _info_nce(output, input, reduction=None, **options):
    if reduction in (None, "mean"):
        return output.new_empty((), dtype=_dtype(output))
    return output.new_empty(output.shape[:-1], dtype=_dtype(output))


def _eigenvectors(abar, k, **options):
    dtype = _dtype(abar)
    return abar.new_empty((*abar.shape[:-2], k), dtype=dtype), abar.new_empty((*abar.shape[:-1], k), dtype=dtype)


FAKES = {
    "cosine_adjacency": lambda f, **o: f.new_empty((*f.shape[:-1], f.shape[-2]), dtype=_dtype(f)),
    "normalize_adjacency": lambda a, **o: a.new_empty(a.shape, dtype=_dtype(a)),
    "info_nce": _info_nce,
    "l2_normalize": lambda x, **o: x.new_empty(x.shape, dtype=_dtype(x)),
    "random_patch_ids": lambda fm, n: fm.new_empty((n,), dtype=torch.int64),
    # [B, N, C] as the C++ function gives it: the transpose of a [B, C, N] gather
    "sample_patches": lambda fm, ids, **o: fm.new_empty(
        (fm.shape[0], fm.shape[1], ids.shape[-1]), dtype=_dtype(fm)
    ).transpose(1, 2),
    "hop_features": lambda x, abar, hops, **o: _hops(x, hops),
    "shared_hop_features": lambda out, inp, abar, hops, **o: (_hops(out, hops), _hops(inp, hops)),
    "normalized_laplacian": lambda abar: abar.new_empty(abar.shape, dtype=_dtype(abar)),
    "laplacian_eigenvectors": _eigenvectors,
}


def _fake_backward(grad_outputs, *args, **options):
    """One gradient per tensor argument, shaped as it (empty float for integer ones)."""
    return [
        a.new_empty(a.shape) if a.is_floating_point() else a.new_empty((0,), dtype=torch.float32)
        for a in args
        if isinstance(a, torch.Tensor)
    ]


_library = torch.library.Library("patchgcl", "IMPL")
for _name in NOT_DIFFERENTIABLE + DIFFERENTIABLE:
    _backward = getattr(ops, _name + "_backward").default if _name in DIFFERENTIABLE else None
    _library.impl(_name, _autograd_kernel(getattr(ops, _name).default, _backward), "Autograd")
    if hasattr(torch.library, "register_fake"):
        torch.library.register_fake(f"patchgcl::{_name}")(FAKES[_name])
        if _backward is not None:
            torch.library.register_fake(f"patchgcl::{_name}_backward")(_fake_backward)

"""Loads the op library patchgcl._C (built by setup.py from include/patchgcl) into
torch.ops.patchgcl and torch.classes.patchgcl, and registers what PyTorch 2.x needs to trace the
loss ops: their fake kernels (shapes and dtypes only) and their autograd.

The loss ops are opaque kernels: `graph_nce_loss(module, parameters, output_features,
input_features, patch_ids, num_patches, with_grads)` runs the C++ forward, and with `with_grads`
the C++ backward as well, returning (loss, d loss/d parameters, d loss/d output_features). Their
autograd (a torch.autograd.Function as the Autograd kernel, on torch 1.13 and 2.x alike)
multiplies the saved gradients by the loss's gradient, so one op call is the whole C++
computation, in eager mode and in a torch.compile graph alike. torch.compile never traces into the
C++ code: its data-dependent host checks (NaN/Inf scans, patch id ranges, each an .item()) would
stop tracing, so they run inside the kernel when the compiled graph runs, on real tensors."""

import contextlib
import importlib.machinery
import os

import torch


def _library_path():
    """patchgcl/_C.so (the extension suffixes of this Python), found as Python finds extension
    modules, in this package's directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    details = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    spec = importlib.machinery.FileFinder(here, details).find_spec("_C")
    if spec is None:
        raise ImportError(f"patchgcl: no op library _C in {here}; install with `pip install --no-build-isolation .`")
    return spec.origin


torch.ops.load_library(_library_path())
ops = torch.ops.patchgcl
LOSS_OPS = ("graph_nce_loss", "patch_nce_loss")


def _fake_loss(module, parameters, output_features, input_features, patch_ids, num_patches, with_grads):
    """The loss is a scalar of the parameters' dtype (of the compute precision without them), on
    the features' device; the gradients are contiguous, shaped and typed as their tensors."""
    like = output_features[0]
    if parameters:
        dtype = parameters[0].dtype
    else:
        dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
    loss = like.new_empty((), dtype=dtype)
    if not with_grads:
        return loss, [], []
    return loss, [p.new_empty(p.shape) for p in parameters], [f.new_empty(f.shape) for f in output_features]


@contextlib.contextmanager
def below_autograd():
    """Dispatch below the Autograd keys (the guard is a context manager from torch 2.0 on, and
    holds while it lives before)."""
    guard = torch._C._AutoDispatchBelowAutograd()
    if hasattr(guard, "__enter__"):
        with guard:
            yield
    else:
        try:
            yield
        finally:
            del guard


class _LossFunction(torch.autograd.Function):
    """The autograd of a loss op: the forward is the op below autograd (with `with_grads`, its
    gradients come back with the loss), the backward multiplies them by the loss's gradient.
    `tensors`: the parameters, the output features, the input features, the patch ids."""

    @staticmethod
    def forward(ctx, op, module, num_patches, with_grads, counts, *tensors):
        p, o, i = counts
        lists = [
            list(tensors[:p]),
            list(tensors[p : p + o]),
            list(tensors[p + o : p + o + i]),
            list(tensors[p + o + i :]),
        ]
        with below_autograd():
            loss, parameter_grads, output_grads = op(module, *lists, num_patches, with_grads)
        ctx.mark_non_differentiable(*parameter_grads, *output_grads)
        ctx.save_for_backward(*parameter_grads, *output_grads)
        ctx.counts = counts
        return (loss, *parameter_grads, *output_grads)

    @staticmethod
    def backward(ctx, grad_loss, *unused):
        p, o, i = ctx.counts
        scaled = [g * grad_loss.to(g.dtype) for g in ctx.saved_tensors] or [None] * (p + o)
        return (None,) * 5 + tuple(scaled) + (None,) * (len(ctx.needs_input_grad) - 5 - p - o)


def _autograd_kernel(op):
    """The Autograd kernel of `op`: _LossFunction, with the op's outputs in the op's structure."""

    def kernel(module, parameters, output_features, input_features, patch_ids, num_patches, with_grads):
        counts = (len(parameters), len(output_features), len(input_features))
        tensors = (*parameters, *output_features, *input_features, *patch_ids)
        out = _LossFunction.apply(op, module, num_patches, with_grads, counts, *tensors)
        p = counts[0]
        return out[0], list(out[1 : 1 + p]), list(out[1 + p :])

    return kernel


# The Autograd kernels, for the C++ dispatcher. Under torch.compile a loss module arrives as a
# fake object, and torch dispatches the op in Python: there the kernels are py_impls.
_autograd_library = torch.library.Library("patchgcl", "IMPL")
for _name in LOSS_OPS:
    _op = getattr(ops, _name).default
    _autograd_library.impl(_name, _autograd_kernel(_op), "Autograd")
    if hasattr(_op, "py_impl"):
        for _key in (torch._C.DispatchKey.AutogradCPU, torch._C.DispatchKey.AutogradCUDA):
            _op.py_impl(_key)(_autograd_kernel(_op))


class FakeGraphNCELossModule:
    """What a fake kernel sees of a loss module under torch.compile: its loss's name (module level,
    so that inductor's graph cache can pickle it)."""

    def __init__(self, loss):
        self.loss = loss

    @classmethod
    def __obj_unflatten__(cls, flattened):
        return cls(**dict(flattened))


def _configuration_only(name):
    def method(self, *args):
        raise RuntimeError(f"patchgcl: {name}() configures a loss module; call it outside torch.compile")

    return method


for _method in ("set_int", "set_float", "set_bool", "set_str", "set_ints", "set_floats", "build", "option_names"):
    setattr(FakeGraphNCELossModule, _method, _configuration_only(_method))


class FakePatchNCELossModule(FakeGraphNCELossModule):
    __obj_unflatten__ = FakeGraphNCELossModule.__dict__["__obj_unflatten__"]  # looked up in the class itself


if hasattr(torch.library, "register_fake"):
    for _name in LOSS_OPS:
        # An op with a custom class argument counts as effectful (ordered, out of autograd) unless
        # told otherwise. The loss ops are functions of their arguments: the module's options
        # and structure are fixed after build(), and each call's parameter tensors and patch
        # count are restored when it returns.
        if hasattr(torch.library, "_register_effectful_op"):
            torch.library._register_effectful_op(f"patchgcl::{_name}", None)
        torch.library.register_fake(f"patchgcl::{_name}")(_fake_loss)

    torch._library.register_fake_class("patchgcl::GraphNCELossModule")(FakeGraphNCELossModule)
    torch._library.register_fake_class("patchgcl::PatchNCELossModule")(FakePatchNCELossModule)


def loss(name, module, parameters, output_features, input_features, patch_ids, num_patches):
    """The loss op `name` on a loss module (torch.classes.patchgcl.*), with gradients when autograd
    needs them."""
    with_grads = torch.is_grad_enabled() and any(t.requires_grad for t in parameters + output_features)
    op = getattr(ops, name)
    return op(module, parameters, output_features, input_features, patch_ids, num_patches, with_grads)[0]

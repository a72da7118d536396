"""torch.compile and torch.library.opcheck over the ops (PyTorch >= 2.4: register_fake,
register_autograd, opcheck). Small shapes and few compiles: the aot_eager backend traces the
forward and the backward through the fake kernels and the registered autograd as inductor does,
without generating code."""

import patchgcl
import patchgcl.functional as F
import pytest
import torch

if not hasattr(torch.library, "opcheck"):
    pytest.skip(f"torch.compile of the ops needs torch >= 2.4, this is {torch.__version__}", allow_module_level=True)
import torch._dynamo.testing  # noqa: E402  (torch 2.x only)


@pytest.fixture(autouse=True)
def backward_in_the_graph():
    """loss.backward() inside the compiled function: dynamo traces it with trace_autograd_ops."""
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        yield


def maps(channels, size=6, batch=2, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size, size, generator=g).requires_grad_(requires_grad) for c in channels]


def make(kind):
    torch.manual_seed(0)
    if kind == "graph":
        return patchgcl.GraphNCELoss([4, 6], num_patches=8, nc=8)
    return patchgcl.PatchNCELoss([4, 6], num_patches=8, nc=8)


def train_step(loss_fn, outs, ins, ids):
    loss = loss_fn(outs, ins, ids)
    loss.backward()
    return loss.detach()


def eager_and_compiled(kind, compiled, size, seed):
    """The loss and the gradients (of the parameters and of G(x)'s maps) of one training step."""
    loss_fn = make(kind)
    outs, ins = maps([4, 6], size, seed=seed, requires_grad=True), maps([4, 6], size, seed=seed + 1)
    ids = [torch.randperm(size * size, generator=torch.Generator().manual_seed(seed))[:8] for _ in outs]
    results = []
    for step in (train_step, compiled):
        loss_fn.zero_grad()
        for o in outs:
            o.grad = None
        loss = step(loss_fn, outs, ins, ids)
        results.append([loss] + [p.grad.clone() for p in loss_fn.parameters()] + [o.grad.clone() for o in outs])
    return results


@pytest.mark.parametrize("kind", ["graph", "patch"])
def test_compiled_training_step_is_eager_and_recompiles_only_on_new_shapes(kind):
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(train_step, backend=counter, fullgraph=True)
    for size, seed, frames in [(6, 0, 1), (6, 5, 1), (7, 0, 2), (8, 3, 2)]:
        eager, traced = eager_and_compiled(kind, compiled, size, seed)
        for a, b in zip(eager, traced):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        # new values: no recompile; a new size: one (then dynamic: no more)
        assert counter.frame_count == frames, (size, seed, counter.frame_count)


def test_compiled_with_inductor_and_the_released_int_call():
    """Inductor, once: the graph loss of a training step called as the released code calls it."""
    torch._dynamo.reset()
    loss_fn = make("graph")
    outs, ins = maps([4, 6], requires_grad=True), maps([4, 6], seed=1)
    compiled = torch.compile(train_step, fullgraph=True)
    torch.manual_seed(4)
    traced = compiled(loss_fn, outs, ins, 8)
    grads = [p.grad.clone() for p in loss_fn.parameters()]
    loss_fn.zero_grad()
    torch.manual_seed(4)
    eager = train_step(loss_fn, outs, ins, 8)
    torch.testing.assert_close(traced, eager, rtol=1e-5, atol=1e-6)
    for a, p in zip(grads, loss_fn.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)


LOSS_CASES = [
    ("graph", {}, 8),
    ("graph", dict(preset="paper", hops=1, info_nce=dict(direction="both")), 6),
    ("graph", dict(info_nce=dict(pruning="hardest_per_anchor", hard_negatives=1)), 8),
    ("patch", {}, 8),
    ("patch", dict(preset="put"), 8),
    ("patch", dict(use_mlp=False), 5),
]


@pytest.mark.parametrize("kind,options,size", LOSS_CASES)
def test_opcheck_loss_ops(kind, options, size):
    torch.manual_seed(0)
    cls, op = (
        (patchgcl.GraphNCELoss, torch.ops.patchgcl.graph_nce_loss)
        if kind == "graph"
        else (patchgcl.PatchNCELoss, torch.ops.patchgcl.patch_nce_loss)
    )
    loss_fn = cls([4, 6], num_patches=8, nc=8, **options).double()
    parameters = [p.detach().clone().requires_grad_() for p in loss_fn.parameters()]
    outs = [f.double() for f in maps([4, 6], size, requires_grad=True)]
    ins = [f.double() for f in maps([4, 6], size, seed=1)]
    ids = [torch.randperm(size * size)[:8] for _ in outs]
    for with_grads in (True, False):
        args = (loss_fn._module, parameters, outs, ins, ids, None, with_grads)
        torch.library.opcheck(op.default, args, test_utils=LOSS_OPCHECKS)
        check_no_mutation_or_aliasing(op.default, args)


# opcheck's test_schema (SchemaCheckMode) calls len() on every argument, which a custom class
# object refuses; check_no_mutation_or_aliasing checks what it would.
LOSS_OPCHECKS = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


def check_no_mutation_or_aliasing(op, args):
    tensors = [t for a in args if isinstance(a, list) for t in a]
    before = [t.detach().clone() for t in tensors]
    loss, parameter_grads, output_grads = op(*args)
    outputs = [loss, *parameter_grads, *output_grads]
    for t, b in zip(tensors, before):
        assert torch.equal(t, b), "an input was changed"
    storages = [t.untyped_storage().data_ptr() for t in tensors + outputs if t.numel()]
    assert len(set(storages)) == len(storages), "an output aliases an input or another output"


def functional_cases():
    """(op, args, kwargs, opcheck tests): float64, small, the differentiable inputs requiring grad."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape, grad=True):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(grad)

    x, fm = rand(2, 6, 4), rand(2, 4, 3, 3)
    w = rand(6, 6, grad=False).abs() + 0.1
    adjacency = (F.cosine_adjacency(x.detach(), threshold=-1.0) * (w + w.t())).requires_grad_()
    abar = F.normalize_adjacency(adjacency.detach()).requires_grad_()  # symmetric, distinct eigenvalues
    v, z = F.l2_normalize(x.detach()).requires_grad_(), F.l2_normalize(x.detach().flip(1))
    ops, every, no_grad = torch.ops.patchgcl, None, ("test_schema", "test_faketensor")
    return [
        (ops.cosine_adjacency, (x.detach(),), dict(threshold=0.2, comparison="greater"), no_grad),
        (ops.normalize_adjacency, (adjacency,), dict(self_loops="double"), every),
        (ops.normalize_adjacency, (adjacency,), dict(normalization="random_walk"), every),
        (ops.info_nce, (v, z), dict(temperature=0.5, direction="both"), every),
        (ops.info_nce, (v, z), dict(reduction="none", pruning="hardest_per_anchor", hard_negatives=2), every),
        (ops.l2_normalize, (x,), dict(mode="add", eps=1e-3), every),
        (ops.random_patch_ids, (fm.detach(), 4), {}, no_grad),  # random: no eager-vs-traced comparison
        (ops.sample_patches, (fm, torch.tensor([0, 4, 8])), {}, every),
        (ops.hop_features, (x, abar, 2), {}, every),
        (ops.shared_hop_features, (x, x.detach() * 2, abar, 1), {}, every),
        (ops.normalized_laplacian, (abar,), {}, every),
        (ops.laplacian_eigenvectors, (abar, 3), {}, every),
    ]


CASES = functional_cases()


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_opcheck_functional_ops(index):
    op, args, kwargs, tests = functional_cases()[index]
    torch.library.opcheck(op.default, args, kwargs, **({} if tests is None else dict(test_utils=tests)))
    backward = getattr(torch.ops.patchgcl, op.__name__ + "_backward", None)
    if backward is not None:  # its backward op, on the gradients of ones
        out = op(*args, **kwargs)
        grads = [torch.ones_like(t) for t in (out if isinstance(out, tuple) else (out,))]
        detached = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
        torch.library.opcheck(backward.default, (grads, *detached), kwargs, test_utils=BACKWARD_OPCHECKS)


# The backward ops are not differentiable (no gradients of gradients): no autograd to check.
BACKWARD_OPCHECKS = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")

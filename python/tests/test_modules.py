"""The nn.Module side: parameter names (the released code's), initialisation by the C++ reset,
load_state_dict, options and presets reaching the C++ module, autograd to the nn.Parameters."""

import copy

import patchgcl
import pytest
import torch

# The released code's names (jcy132/PatchGCL netF; CUT's PatchSampleF), layer 0 of each.
RELEASED_GRAPH_LAYER_0 = [
    "embed_0.weight",
    "embed_0.bias",
    "gnn_0.lin.weight",
    "gnn_0.lin.bias",
    "pools_0.0.proj.weight",
    "pools_0.0.proj.bias",
    "gnn_pools_0.0.lin.weight",
    "gnn_pools_0.0.lin.bias",
]
RELEASED_PATCH_LAYER_0 = ["mlp_0.0.weight", "mlp_0.0.bias", "mlp_0.2.weight", "mlp_0.2.bias"]


def maps(channels, size=8, batch=2, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size, size, generator=g).requires_grad_(requires_grad) for c in channels]


def test_graph_state_dict_keys_are_the_released_names():
    keys = list(patchgcl.GraphNCELoss([4, 6], nc=8).state_dict())
    assert keys == RELEASED_GRAPH_LAYER_0 + [k.replace("_0", "_1") for k in RELEASED_GRAPH_LAYER_0]


def test_graph_shapes_follow_the_options():
    sd = patchgcl.GraphNCELoss([4], nc=8, hops=3, pooled_hops=2).state_dict()
    assert sd["embed_0.weight"].shape == (8, 4)
    assert sd["gnn_0.lin.weight"].shape == (8, 4 * 8)  # (hops + 1) * nc inputs
    assert sd["gnn_pools_0.0.lin.weight"].shape == (8, 3 * 8)
    assert sd["pools_0.0.proj.weight"].shape == (1, 8)


def test_paper_preset_has_no_biases_and_two_hop_pooled_convs():
    keys = list(patchgcl.GraphNCELoss([4], preset="paper", nc=8).state_dict())
    assert keys == [
        "embed_0.weight",
        "embed_0.bias",
        "gnn_0.lin.weight",
        "pools_0.0.proj.weight",
        "gnn_pools_0.0.lin.weight",
    ]


def test_patch_state_dict_keys_are_cut_patchsamplef_names():
    assert list(patchgcl.PatchNCELoss([3]).state_dict()) == RELEASED_PATCH_LAYER_0
    assert list(patchgcl.PatchNCELoss([3], use_mlp=False).state_dict()) == []


def test_initialisation_is_the_cpp_reset_under_torch_seed():
    torch.manual_seed(7)
    a = patchgcl.GraphNCELoss([64], nc=64).state_dict()
    torch.manual_seed(7)
    b = patchgcl.GraphNCELoss([64], nc=64).state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["embed_0.weight"].std().item() == pytest.approx(0.02, rel=0.1)  # init_std
    assert torch.count_nonzero(a["embed_0.bias"]) == 0
    assert patchgcl.GraphNCELoss([64], nc=64, init_std=0.5).embed_0.weight.std().item() == pytest.approx(0.5, rel=0.1)


def test_load_state_dict_round_trip_gives_the_same_loss():
    torch.manual_seed(1)
    a = patchgcl.GraphNCELoss([4, 6], num_patches=16, nc=8)
    b = patchgcl.GraphNCELoss([4, 6], num_patches=16, nc=8)
    outs, ins = maps([4, 6], seed=1), maps([4, 6], seed=2)
    ids = [torch.randperm(64)[:16] for _ in range(2)]
    assert a(outs, ins, ids).item() != b(outs, ins, ids).item()
    b.load_state_dict(a.state_dict())
    assert a(outs, ins, ids).item() == b(outs, ins, ids).item()


def test_gradients_reach_the_python_parameters_and_training_lowers_the_loss():
    torch.manual_seed(0)
    loss_fn = patchgcl.GraphNCELoss([4], num_patches=16, nc=8)
    outs, ins = maps([4], seed=3, requires_grad=True), maps([4], seed=4)
    ids = [torch.randperm(64)[:16]]
    opt = torch.optim.Adam(list(loss_fn.parameters()) + outs, lr=0.05)
    first = loss_fn(outs, ins, ids)
    first.backward()
    for name, p in loss_fn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert outs[0].grad.abs().sum() > 0
    for _ in range(20):
        opt.step()
        opt.zero_grad()
        loss = loss_fn(outs, ins, ids)
        loss.backward()
    assert loss.item() < first.item()


def test_frozen_parameters_stay_frozen():
    loss_fn = patchgcl.PatchNCELoss([4], num_patches=16, nc=8).requires_grad_(False)
    outs = maps([4], requires_grad=True)
    loss_fn(outs, maps([4], seed=5)).backward()
    assert all(p.grad is None for p in loss_fn.parameters())
    assert outs[0].grad is not None


def test_patch_ids_are_drawn_from_torch_generator_when_omitted():
    loss_fn = patchgcl.PatchNCELoss([4], num_patches=16, nc=8)
    outs, ins = maps([4]), maps([4], seed=5)
    torch.manual_seed(3)
    a = loss_fn(outs, ins)
    torch.manual_seed(3)
    b = loss_fn(outs, ins)
    c = loss_fn(outs, ins)
    assert a.item() == b.item() != c.item()


def test_options_reach_the_cpp_module():
    torch.manual_seed(0)
    base = patchgcl.GraphNCELoss([4], num_patches=16, nc=8)
    outs, ins, ids = maps([4]), maps([4], seed=5), [torch.randperm(64)[:16]]
    reference = base(outs, ins, ids).item()
    for options in [
        dict(adjacency=dict(threshold=0.5)),
        dict(level_weights=[1.0, 2.0]),
        dict(info_nce=dict(temperature=0.2)),
        dict(average_levels=False),
    ]:
        other = patchgcl.GraphNCELoss([4], num_patches=16, nc=8, **options)
        other.load_state_dict(base.state_dict())
        assert other(outs, ins, ids).item() != reference, options
    # average_levels=False with P = 1: twice the averaged sum, exactly
    summed = patchgcl.GraphNCELoss([4], num_patches=16, nc=8, average_levels=False)
    summed.load_state_dict(base.state_dict())
    assert summed(outs, ins, ids).item() == pytest.approx(2 * reference, rel=1e-6)


def test_dtype_is_the_modules_as_in_cpp():
    loss_fn = patchgcl.GraphNCELoss([4], num_patches=16, nc=8).double()
    outs, ins = maps([4]), maps([4], seed=5)
    with pytest.raises(RuntimeError, match="`output_features` has dtype Float but the module's parameters are Double"):
        loss_fn(outs, ins)
    assert loss_fn([x.double() for x in outs], [x.double() for x in ins]).dtype == torch.float64


def test_a_released_gnnloss_state_dict_loads_as_it_is(fixtures):
    """netF of the authors' code (embed_i.linear.*, gnn_i.conv1.lin.*, ..., with DataParallel's
    `module.`), strictly: every tensor lands, and the loss is the released one."""
    tensors, cfg = fixtures.CASES["graph_nce_small"]()
    params = {k[len("param.") :]: v.detach() for k, v in tensors.items() if k.startswith("param.")}
    released = {}
    for k, v in params.items():
        k = k.replace(".lin.", ".conv1.lin.") if k.startswith(("gnn_", "gnn_pools_")) else k
        k = k.replace(".weight", ".linear.weight").replace(".bias", ".linear.bias") if k.startswith("embed_") else k
        released["module." + k] = v
    assert "module.embed_0.linear.weight" in released and "module.gnn_pools_0.0.conv1.lin.bias" in released
    module = patchgcl.GraphNCELoss([3, 5, 8], num_patches=16, nc=16).double()
    module.load_state_dict(released)
    for k, v in module.state_dict().items():
        assert torch.equal(v, params[k]), k
    outs = [tensors[f"output_features.{i}"].detach() for i in range(3)]
    ins = [tensors[f"input_features.{i}"].detach() for i in range(3)]
    ids = [tensors[f"patch_ids.{i}"] for i in range(3)]
    assert module(outs, ins, ids).item() == pytest.approx(tensors["expected.loss"].item(), rel=1e-9)


def test_load_state_dict_still_rejects_unknown_names():
    with pytest.raises(RuntimeError, match="Unexpected key"):
        patchgcl.PatchNCELoss([3]).load_state_dict(
            {**patchgcl.PatchNCELoss([3]).state_dict(), "mlp_9.0.weight": torch.zeros(1)}
        )


def test_deepcopy_is_an_independent_module_and_leaves_torch_generator_alone():
    loss_fn = patchgcl.GraphNCELoss([4], num_patches=16, nc=8, hops=1, adjacency=dict(threshold=0.3))
    outs, ins, ids = maps([4]), maps([4], seed=5), [torch.randperm(64)[:16]]
    torch.manual_seed(5)
    state = torch.get_rng_state()
    twin = copy.deepcopy(loss_fn)  # the C++ module rebuilt from its options, parameters copied
    assert torch.equal(torch.get_rng_state(), state)
    assert twin(outs, ins, ids).item() == loss_fn(outs, ins, ids).item()
    with torch.no_grad():
        twin.embed_0.weight.add_(1.0)
    assert twin(outs, ins, ids).item() != loss_fn(outs, ins, ids).item()

"""patchgcl's modules against python/patchgcl_reference (the released PatchGCL, CUT and PUT
losses restated in plain torch), in float64: the loss and every gradient, relative 1e-9. The
cases are those of tests/fixtures (tests/reference/generate_fixtures.py), recomputed live."""

import patchgcl
import pytest
import torch

REL = 1e-9


def close(actual, expected, what):
    scale = max(expected.abs().max().item(), 1e-300)
    err = (actual - expected).abs().max().item() / scale
    assert err <= REL, f"{what}: relative error {err:.3e} > {REL}"


def run_case(module, tensors, num_layers):
    """Loads the case's weights by their released names, runs the module, compares the loss and
    the gradients w.r.t. the output features and every parameter."""
    state = {k[len("param.") :]: v.detach() for k, v in tensors.items() if k.startswith("param.")}
    module.double().load_state_dict(state)  # strict: the names are the released code's
    outs = [tensors[f"output_features.{i}"].detach().clone().requires_grad_() for i in range(num_layers)]
    ins = [tensors[f"input_features.{i}"].detach().clone().requires_grad_() for i in range(num_layers)]
    ids = [tensors[f"patch_ids.{i}"] for i in range(num_layers)]
    loss = module(outs, ins, ids)
    assert loss.dtype == torch.float64
    close(loss.detach(), tensors["expected.loss"].detach(), "loss")
    loss.backward()
    for i in range(num_layers):
        close(outs[i].grad, tensors[f"grad.output_features.{i}"], f"d loss / d output_features.{i}")
        assert ins[i].grad is None, "the input side is detached"
    for name, p in module.named_parameters():
        close(p.grad, tensors["grad." + name], f"d loss / d {name}")


@pytest.mark.parametrize("case", ["graph_nce_small", "graph_nce_released"])
def test_graph_nce_reference_preset_is_the_released_gnnloss(fixtures, case):
    tensors, cfg = fixtures.CASES[case]()
    in_channels = [int(c) for c in cfg["in_channels"].split(",")]
    module = patchgcl.GraphNCELoss(in_channels, preset="reference", num_patches=cfg["num_patches"], nc=cfg["nc"])
    run_case(module, tensors, cfg["num_layers"])


@pytest.mark.parametrize(
    "case,preset,options",
    [
        ("patchnce_cut", "reference", {}),
        ("patchnce_put_code", "put", {}),
        ("patchnce_put_paper", "reference", {"info_nce": {"pruning": "hardest_per_anchor", "hard_negatives": 5}}),
    ],
)
def test_patch_nce_is_cut_and_put(fixtures, case, preset, options):
    tensors, cfg = fixtures.CASES[case]()
    in_channels = [int(c) for c in cfg["in_channels"].split(",")]
    module = patchgcl.PatchNCELoss(in_channels, preset=preset, num_patches=cfg["num_patches"], nc=cfg["nc"], **options)
    run_case(module, tensors, cfg["num_layers"])


def test_a_wrong_weight_is_detected(fixtures):
    """The comparison can fail: one perturbed weight moves the loss beyond the tolerance."""
    tensors, cfg = fixtures.CASES["patchnce_cut"]()
    tensors["param.mlp_0.0.weight"] = tensors["param.mlp_0.0.weight"].detach() * (1 + 1e-6)
    module = patchgcl.PatchNCELoss([3, 5, 8], num_patches=cfg["num_patches"], nc=cfg["nc"])
    with pytest.raises(AssertionError, match="loss: relative error"):
        run_case(module, tensors, cfg["num_layers"])

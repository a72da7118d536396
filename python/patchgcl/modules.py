"""GraphNCELoss and PatchNCELoss as torch.nn.Modules over the C++ modules.

Each Python module builds its C++ module once, as a torch.classes.patchgcl.*LossModule (the
options set through its typed setters, by their C++ names), and owns the parameters, as
nn.Parameters named as the C++ module (and the released code) names them, created by the C++
module's own reset. forward hands them, in the C++ named_parameters() order, to the loss op,
which runs the C++ forward (and backward) with exactly these tensors. See docs/python.md."""

import torch
from torch import nn

from ._ops import loss
from .released_names import rename_on_load


def _flatten(options, prefix=""):
    for key, value in options.items():
        if isinstance(value, dict):  # a nested C++ options struct, e.g. adjacency=dict(threshold=0.2)
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _set(module, key, value):
    """One option through the setter of its Python type; the C++ table checks the name and type."""
    if isinstance(value, bool):
        return module.set_bool(key, value)
    if isinstance(value, int):
        return module.set_int(key, value)
    if isinstance(value, float):
        return module.set_float(key, value)
    if isinstance(value, str):
        return module.set_str(key, value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        if all(isinstance(v, int) for v in value):
            return module.set_ints(key, list(value))
        return module.set_floats(key, [float(v) for v in value])
    raise TypeError(f"patchgcl: option `{key}` must be a bool, number, string or a list of numbers, got {type(value)}")


class _Loss(nn.Module):
    _class = None  # set by the subclasses: the C++ class and the op they use
    _op = None

    def __init__(self, in_channels, preset, options):
        super().__init__()
        self.options = dict(options, in_channels=[int(c) for c in in_channels], preset=preset)
        module = getattr(torch.classes.patchgcl, self._class)(preset, self.options["in_channels"])
        for key, value in _flatten(options):
            _set(module, key, value)
        names, tensors = module.build()
        self._module = module
        self._parameter_names = list(names)
        for name, tensor in zip(names, tensors):
            *path, leaf = name.split(".")
            owner = self
            for part in path:  # plain containers, so that the state_dict keys are the C++ names
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            owner.register_parameter(leaf, nn.Parameter(tensor))
        self._register_load_state_dict_pre_hook(rename_on_load)  # the authors' checkpoints as they are

    def forward(self, output_features, input_features, num_patches_or_patch_ids=None):
        """output_features: G(x)'s [B, C_l, H_l, W_l] maps; input_features: x's. The third
        argument is the released code's: an int, the number of patches drawn per layer for this
        call (torch's generator); or one [N] int64 tensor of patch ids per layer; or None to draw
        the configured num_patches."""
        ids, num_patches = [], None
        if isinstance(num_patches_or_patch_ids, int) and not isinstance(num_patches_or_patch_ids, bool):
            num_patches = num_patches_or_patch_ids
        elif num_patches_or_patch_ids is not None:
            ids = list(num_patches_or_patch_ids)
        parameters = [self.get_parameter(name) for name in self._parameter_names]
        return loss(self._op, self._module, parameters, list(output_features), list(input_features), ids, num_patches)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))

    @classmethod
    def option_names(cls):
        """The options the C++ module accepts, by their dotted C++ names (the keywords, nested
        structs as dicts: adjacency=dict(threshold=0.2) is `adjacency.threshold`)."""
        return list(getattr(torch.classes.patchgcl, cls._class)("reference", [1]).option_names())


class GraphNCELoss(_Loss):
    """PatchGCL's patch-wise graph contrastive loss (include/patchgcl/modules/graph_nce.hpp).

        loss_fn = patchgcl.GraphNCELoss([256, 512, 512])                   # the released code's settings
        loss_fn = patchgcl.GraphNCELoss([256, 512, 512], preset="paper")  # the text's
        loss_fn = patchgcl.GraphNCELoss([256], num_patches=64, hops=1, adjacency=dict(threshold=0.2))
        loss = loss_fn(vgg(fake), vgg(real))

    Options, by their C++ names (GraphNCELossOptions): num_patches, nc, l2_eps, init_std, hops,
    conv_bias, pooling_levels, down_scale, pooled_hops, level_weights, average_levels,
    score_activation, score_bias, pooled_adjacency, check_finite, and the nested structs as
    dicts: adjacency (threshold, comparison, diagonal, eps, normalize, check_finite), normalize
    (normalization, self_loops, check_finite), info_nce (temperature, diagonal_value, direction,
    negatives, pruning, hard_negatives, reduction, check_finite)."""

    _class = "GraphNCELossModule"
    _op = "graph_nce_loss"

    def __init__(self, in_channels, preset="reference", **options):
        super().__init__(in_channels, preset, options)


class PatchNCELoss(_Loss):
    """CUT's PatchNCE with PatchSampleF's head, or PUT's (preset="put")
    (include/patchgcl/modules/patch_nce.hpp).

        loss_fn = patchgcl.PatchNCELoss([3, 128, 256, 256, 256])
        loss_fn = patchgcl.PatchNCELoss([3, 128, 256, 256, 256], preset="put")

    Options (PatchNCELossOptions): num_patches, nc, l2_eps, init_std, use_mlp, check_finite and
    info_nce as a dict (temperature, diagonal_value, direction, negatives, pruning,
    hard_negatives, reduction, check_finite; PUT's k is info_nce=dict(hard_negatives=k))."""

    _class = "PatchNCELossModule"
    _op = "patch_nce_loss"

    def __init__(self, in_channels, preset="reference", **options):
        super().__init__(in_channels, preset, options)

"""GraphNCELoss and PatchNCELoss as torch.nn.Modules over the C++ modules.

The Python module owns the parameters, as nn.Parameters named as the C++ module (and the
released code) names them, created by the C++ module's own reset. forward hands them, in the
C++ named_parameters() order, to one op that runs the C++ forward with exactly these tensors,
so autograd reaches them. See docs/python.md."""

from torch import nn

from ._ops import ops, option_string
from .released_names import rename_on_load


class _Loss(nn.Module):
    _parameters_op = None  # set by the subclasses: the ops they call
    _loss_op = None

    def __init__(self, in_channels, preset, options):
        super().__init__()
        self.options = dict(options, in_channels=[int(c) for c in in_channels], preset=preset)
        self._spec = option_string(self.options)
        names, tensors = type(self)._parameters_op(self._spec)
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

    def forward(self, output_features, input_features, patch_ids=None):
        """output_features: G(x)'s [B, C_l, H_l, W_l] maps; input_features: x's; patch_ids:
        one [N] int64 tensor per layer, or None to draw them (torch's generator)."""
        parameters = [self.get_parameter(name) for name in self._parameter_names]
        return type(self)._loss_op(
            self._spec,
            parameters,
            list(output_features),
            list(input_features),
            list(patch_ids) if patch_ids is not None else [],
        )

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))


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

    _parameters_op = staticmethod(lambda spec: ops.graph_nce_parameters(spec))
    _loss_op = staticmethod(lambda *args: ops.graph_nce_loss(*args))

    def __init__(self, in_channels, preset="reference", **options):
        super().__init__(in_channels, preset, options)


class PatchNCELoss(_Loss):
    """CUT's PatchNCE with PatchSampleF's head, or PUT's (preset="put")
    (include/patchgcl/modules/patch_nce.hpp).

        loss_fn = patchgcl.PatchNCELoss([3, 128, 256, 256, 256])
        loss_fn = patchgcl.PatchNCELoss([3, 128, 256, 256, 256], preset="put")

    Options (PatchNCELossOptions): num_patches, nc, l2_eps, init_std, use_mlp, check_finite and info_nce as a
    dict (PUT's k is info_nce=dict(hard_negatives=k))."""

    _parameters_op = staticmethod(lambda spec: ops.patch_nce_parameters(spec))
    _loss_op = staticmethod(lambda *args: ops.patch_nce_loss(*args))

    def __init__(self, in_channels, preset="reference", **options):
        super().__init__(in_channels, preset, options)

"""CUT's ResNet generator (Park et al. 2020, `models/networks.py`: ResnetGenerator), restated in
plain torch from its architecture, with the same module list and therefore the same state_dict
names: the trainer's `generator.safetensors` (and `patchgcl-trainer export`) loads into it, and
into CUT's own class, with `load_state_dict(..., strict=True)`.

    from patchgcl_reference.cut_generator import load_generator
    netG = load_generator("runs/demo/generator.safetensors")     # built from the file's metadata
    fake = netG(real)                                            # [B, input_nc, H, W] in [-1, 1], H, W % 4 == 0

The layers (Johnson et al. 2016 with Zhang 2019's anti-aliased resampling), in one Sequential
`model`, normalisation InstanceNorm2d(affine=False, track_running_stats=False) (CUT's --normG
instance: no tensors) and convolutions with biases:

    ReflectionPad2d(3), Conv2d(input_nc, ngf, 7), IN, ReLU
    2 x  Conv2d(c, 2c, 3, padding 1), IN, ReLU, Downsample(2c)     (no_antialias: stride-2 conv, no Downsample)
    n_blocks x ResnetBlock(4 ngf)
    2 x  Upsample(c), Conv2d(c, c/2, 3, padding 1), IN, ReLU       (no_antialias_up: ConvTranspose2d(c, c/2, 3, 2, 1, 1))
    ReflectionPad2d(3), Conv2d(ngf, output_nc, 7), Tanh

Downsample is a blur with [1,2,1] (x) [1,2,1] / 16 and stride 2 after reflection padding;
Upsample a stride-2 transposed convolution with [1,3,3,1] (x) [1,3,3,1] / 16 after replication
padding, trimmed back to twice the input's size (the same as bilinear x2 with align_corners False).
Both keep their filter, repeated over the channels, as the buffer `filt`.
"""

import json

import torch
import torch.nn as nn
import torch.nn.functional as F


def binomial_filter(channels, row, scale=1.0):
    """outer(row, row) normalised to sum `scale`, as a depthwise filter [channels, 1, k, k]."""
    r = torch.tensor(row, dtype=torch.float64)
    f = torch.outer(r, r)
    f = (f / f.sum() * scale).to(torch.float32)
    return f.expand(channels, 1, len(row), len(row)).contiguous()


class Downsample(nn.Module):
    """Anti-aliased subsampling by 2: reflection pad 1, blur [1,2,1] (x) [1,2,1] / 16, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", binomial_filter(channels, [1.0, 2.0, 1.0]))

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Anti-aliased upsampling by 2: replication pad 1, stride-2 transposed convolution with
    [1,3,3,1] (x) [1,3,3,1] / 64 * 4, and the one-pixel border the padding added trimmed off."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", binomial_filter(channels, [1.0, 3.0, 3.0, 1.0], 4.0))

    def forward(self, x):
        y = F.conv_transpose2d(
            F.pad(x, (1, 1, 1, 1), mode="replicate"), self.filt, stride=2, padding=2, groups=x.shape[1]
        )
        return y[:, :, 1:-1, 1:-1]


def _padded_conv(dim, padding_type):
    """[pad layer, 3x3 conv] for a residual block's padding_type (zero: the conv pads, no layer)."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3)]
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1), nn.Conv2d(dim, dim, 3)]
    if padding_type == "zero":
        return [nn.Conv2d(dim, dim, 3, padding=1)]
    raise ValueError(f"padding_type must be reflect, replicate or zero, got {padding_type!r}")


def _norm(channels):
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + conv_block(x), conv_block = pad, conv3, IN, ReLU, [Dropout(0.5)], pad, conv3, IN."""

    def __init__(self, dim, padding_type="reflect", use_dropout=False):
        super().__init__()
        layers = _padded_conv(dim, padding_type) + [_norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += _padded_conv(dim, padding_type) + [_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CUT's ResnetGenerator with --normG instance (see the module's docstring)."""

    def __init__(
        self,
        input_nc=3,
        output_nc=3,
        ngf=64,
        n_blocks=9,
        use_dropout=False,
        no_antialias=False,
        no_antialias_up=False,
        padding_type="reflect",
    ):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be at least 0, got {n_blocks}")
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), _norm(ngf), nn.ReLU(True)]
        for c in (ngf, 2 * ngf):
            if no_antialias:
                layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), _norm(2 * c), nn.ReLU(True)]
            else:
                layers += [nn.Conv2d(c, 2 * c, 3, padding=1), _norm(2 * c), nn.ReLU(True), Downsample(2 * c)]
        layers += [ResnetBlock(4 * ngf, padding_type, use_dropout) for _ in range(n_blocks)]
        for c in (4 * ngf, 2 * ngf):
            if no_antialias_up:
                layers += [
                    nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                    _norm(c // 2),
                    nn.ReLU(True),
                ]
            else:
                layers += [Upsample(c), nn.Conv2d(c, c // 2, 3, padding=1), _norm(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def metadata_options(metadata):
    """ResnetGenerator's keyword arguments from generator.safetensors' `__metadata__`."""
    if metadata is None or metadata.get("architecture") != "ResnetGenerator":
        raise ValueError(f"not a generator.safetensors of patchgcl-trainer: __metadata__ is {json.dumps(metadata)}")
    if metadata.get("norm", "instance") != "instance":
        raise ValueError(f"norm {metadata['norm']!r}: only instance normalisation is restated here")

    def flag(key):
        value = metadata.get(key, "false")
        if value not in ("true", "false"):
            raise ValueError(f"__metadata__ {key} must be true or false, got {value!r}")
        return value == "true"

    return dict(
        input_nc=int(metadata["input_nc"]),
        output_nc=int(metadata["output_nc"]),
        ngf=int(metadata["ngf"]),
        n_blocks=int(metadata["n_blocks"]),
        use_dropout=flag("use_dropout"),
        no_antialias=flag("no_antialias"),
        no_antialias_up=flag("no_antialias_up"),
        padding_type=metadata.get("padding_type", "reflect"),
    )


def load_generator(path, device="cpu"):
    """The generator in the safetensors file `path` (from patchgcl-trainer train or export), built
    from the file's metadata, loaded with strict=True, in eval mode. Needs `pip install safetensors`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    net = ResnetGenerator(**metadata_options(metadata))
    net.load_state_dict(load_file(path), strict=True)
    return net.to(device).eval()

"""Loads the op library patchgcl._C (built by setup.py from include/patchgcl) into
torch.ops.patchgcl, and writes the option strings the ops read."""

import glob
import os

import torch

_here = os.path.dirname(os.path.abspath(__file__))
_libraries = sorted(glob.glob(os.path.join(_here, "_C*.so")))
if not _libraries:
    raise ImportError(f"patchgcl: no op library _C*.so in {_here}; install with `pip install --no-build-isolation .`")
torch.ops.load_library(_libraries[0])
ops = torch.ops.patchgcl


def _value(key, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr(float) round-trips exactly through strtod; inf is "inf"
    if isinstance(value, str):
        if ";" in value or "=" in value or "," in value:
            raise ValueError(f"patchgcl: option `{key}` has a character reserved for the option string: {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(_value(key, v) for v in value)
    raise TypeError(f"patchgcl: option `{key}` must be a bool, number, string or a list of them, got {type(value)}")


def _flatten(options, prefix=""):
    for key, value in options.items():
        if isinstance(value, dict):  # a nested C++ options struct, e.g. adjacency=dict(threshold=0.2)
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def option_string(options):
    """{"hops": 1, "adjacency": {"threshold": 0.2}} -> "adjacency.threshold=0.2;hops=1" (sorted,
    so that equal options give one string: the C++ side caches one module per string)."""
    return ";".join(f"{k}={_value(k, v)}" for k, v in sorted(_flatten(options)))

"""patchgcl: PatchGCL's graph contrastive loss and CUT/PUT's PatchNCE for PyTorch, computed by
patchgcl's C++ library (include/patchgcl) through torch.ops.patchgcl. See docs/python.md."""

from . import _functional_ops, functional  # noqa: F401  (_functional_ops: registrations)
from ._ops import ops
from .modules import GraphNCELoss, PatchNCELoss

__version__ = ops.version()  # PATCHGCL_VERSION_STRING of include/patchgcl/version.hpp, compiled in

__all__ = ["GraphNCELoss", "PatchNCELoss", "functional", "__version__"]

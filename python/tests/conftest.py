"""The installed patchgcl is imported first; python/ goes to the end of sys.path afterwards for
patchgcl_reference only (python/patchgcl there is the source tree, without the op library)."""

import importlib.util
import os
import sys

import patchgcl  # noqa: F401  (the installed package, before python/ is on the path)
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.join(ROOT, "python"))


def load_script(relative_path, name):
    """A module of the repository that is not a package (tests/reference/generate_fixtures.py)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fixtures():
    """tests/reference/generate_fixtures.py: the released losses recomputed in float64 by
    patchgcl_reference, with their well-posed inputs and gradients."""
    threads = torch.get_num_threads()
    module = load_script(os.path.join("tests", "reference", "generate_fixtures.py"), "generate_fixtures")
    torch.set_num_threads(threads)  # it sets one thread at import
    return module


cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available (torch.cuda.is_available() is False)"
)

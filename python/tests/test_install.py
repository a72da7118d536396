import os
import re

import patchgcl
from conftest import ROOT


def test_the_installed_package_is_tested_not_the_source_tree():
    assert not os.path.abspath(patchgcl.__file__).startswith(os.path.join(ROOT, "python") + os.sep)


def test_version_is_version_hpp():
    with open(os.path.join(ROOT, "include", "patchgcl", "version.hpp")) as f:
        text = f.read()
    parts = [re.search(rf"PATCHGCL_VERSION_{p} (\d+)", text).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert patchgcl.__version__ == ".".join(parts)

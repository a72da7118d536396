"""Builds the Python package `patchgcl` (python/patchgcl) and its op library patchgcl._C from
include/patchgcl against the torch already installed:

    pip install --no-build-isolation .

See docs/python.md."""

import os
import re

import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def library_version():
    """MAJOR.MINOR.PATCH from include/patchgcl/version.hpp, the one source of the version."""
    with open(os.path.join(ROOT, "include", "patchgcl", "version.hpp")) as f:
        text = f.read()
    parts = [re.search(rf"#define PATCHGCL_VERSION_{p} (\d+)", text).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def cxx_standard():
    """The library is C++17; LibTorch's headers need C++20 from 2.14 on."""
    major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())
    return "-std=c++20" if (major, minor) >= (2, 14) else "-std=c++17"


csrc = os.path.join("python", "patchgcl", "csrc")
setup(
    name="patchgcl",
    version=library_version(),
    description="PatchGCL's graph contrastive loss and CUT/PUT's PatchNCE, from patchgcl's C++ headers",
    package_dir={"": "python"},
    packages=["patchgcl"],
    ext_modules=[
        CppExtension(
            "patchgcl._C",
            sources=[os.path.join(csrc, "ops_losses.cpp"), os.path.join(csrc, "ops_functional.cpp")],
            include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, csrc)],
            extra_compile_args=[cxx_standard(), "-O2", "-g0"],  # no debug info: a 21 MB library otherwise
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)},
    python_requires=">=3.8",
    install_requires=["torch"],
    zip_safe=False,
    # Not build/ (scripts/test.sh's CMake build), and one folder per torch: the objects differ.
    options={"build": {"build_base": os.path.join("build-python", "torch-" + torch.__version__)}},
)

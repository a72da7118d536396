# shellcheck shell=bash
# Sourced: the PyPI torch versions this repository builds against, pinned so that a run is
# reproducible (.ci/run's lanes, scripts/demo.sh, scripts/gpu-check.sh). Bump them when PyPI has a
# newer torch (.ci/run prints a notice).
PATCHGCL_TORCH_NEWEST=2.15.0        # the newest; its headers need C++20 (2.14.0 and later)
PATCHGCL_TORCH_NEWEST_CXX17=2.13.0  # the newest whose headers accept C++17

"""The Python side of patchgcl's reference parity: one home for what the tools share.

  reference  the released PatchGCL / CUT / PUT losses and the DGL / PyG layers, restated in plain torch
  pgt        the `.pgt` tensor file (include/patchgcl/io/tensor_file.hpp reads it)
  convert    checkpoints of the authors' code -> patchgcl's C++ parameter names
  cut_generator  CUT's ResnetGenerator, restated; loads the trainer's generator.safetensors

Imported by tests/reference/generate_fixtures.py, tests/reference/check_against_libraries.py,
benchmarks/reference/bench_reference.py and scripts/convert-reference-weights.py, which all run
with the repository's `python/` folder on the import path (python/README.md):

    PYTHONPATH=python python3 tests/reference/generate_fixtures.py --check
"""

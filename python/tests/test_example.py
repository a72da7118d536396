import math
import os
import subprocess
import sys

from conftest import ROOT, load_script


def test_train_tiny_cut_trains_netF_and_G():
    example = load_script(os.path.join("python", "examples", "train_tiny_cut.py"), "train_tiny_cut")
    losses = example.main(["--steps", "3"])
    assert len(losses) == 3 and all(math.isfinite(v) for step in losses for v in step)
    assert losses[0][2] != losses[-1][2]  # the graph loss moves as netG and netF train


def test_train_tiny_cut_runs_as_a_script():
    script = os.path.join(ROOT, "python", "examples", "train_tiny_cut.py")
    out = subprocess.run(
        [sys.executable, script, "--steps", "2"], capture_output=True, text=True, check=True, cwd=os.path.dirname(ROOT)
    )
    assert "step 1:" in out.stdout

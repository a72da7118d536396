#!/usr/bin/env python3
"""ctest trainer_compare_scripts: the scoring and table scripts of scripts/compare-losses.sh.

  compare_scripts.py WORK_DIR

* scripts/structure-score.py on a drawn image: the image itself, its inverted colours and its
  enlargement score about 1, its mirror image and uniform noise about 0, a blank image 0.
* scripts/compare-table.py on run folders written here: the mean +- sd and the per-seed rows hold
  the numbers of the files, unfinished runs are counted and left out.
Exits 77 (skipped) where numpy or Pillow is missing.
"""

import json
import os
import shutil
import subprocess
import sys

try:
    import numpy as np
    from PIL import Image, ImageOps
except ImportError as e:
    print(f"SKIPPED: {e} (Debian: python3-numpy, python3-pil)")
    sys.exit(77)

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts")


def run(script, *args):
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args], capture_output=True, text=True)
    assert out.returncode == 0, f"{script} {args}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def scene(size=(96, 72)):
    """An image with edges at known places: rectangles and a disc of different colours."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.zeros((h, w, 3))
    rgb[:] = (0.2, 0.3, 0.5)
    rgb[(x > 10) & (x < 40) & (y > 8) & (y < 30)] = (0.9, 0.7, 0.1)
    rgb[(x - 65) ** 2 + (y - 45) ** 2 < 15**2] = (0.1, 0.8, 0.3)
    rgb[(x > 5) & (x < 90) & (y > 58) & (y < 64)] = (0.8, 0.1, 0.1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def structure(work, name, image):
    folder = os.path.join(work, name)
    os.makedirs(folder, exist_ok=True)
    image.save(os.path.join(folder, "scene.png"))
    return json.loads(run("structure-score.py", "--inputs", os.path.join(work, "in"), "--outputs", folder))


def test_structure_score(work):
    source = scene()
    structure(work, "in", source)
    same, inverted = structure(work, "same", source), structure(work, "inverted", ImageOps.invert(source))
    assert abs(same["edge_structure"] - 1) < 1e-9 and same["count"] == 1, same
    assert abs(inverted["edge_structure"] - 1) < 1e-6, inverted
    mirrored = structure(work, "mirrored", ImageOps.mirror(source))["edge_structure"]
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8))
    noisy = structure(work, "noise", noise)["edge_structure"]
    blank = structure(work, "blank", Image.new("RGB", source.size, (128, 128, 128)))["edge_structure"]
    assert abs(mirrored) < 0.2 and abs(noisy) < 0.2 and blank == 0, (mirrored, noisy, blank)
    # The translation at twice the size: the input is resized to it, the edges stay where they were.
    doubled = structure(work, "doubled", source.resize((192, 144), Image.BICUBIC))["edge_structure"]
    assert doubled > 0.9, doubled
    print(
        f"edge structure: same 1, inverted 1, doubled {doubled:.3f}, mirrored {mirrored:.3f}, noise {noisy:.3f}, blank 0"
    )


def write_run(run, fids, edge, iou, rate):
    os.makedirs(run, exist_ok=True)
    rows = [{"step": 100 * (i + 1), "fid": f, "kid": f / 1000} for i, f in enumerate(fids)]
    with open(os.path.join(run, "checkpoint_scores.json"), "w") as f:
        json.dump({"checkpoints": rows}, f)
    for which, e, i in (("best", edge[0], iou[0]), ("ckpt", edge[1], iou[1])):
        with open(os.path.join(run, f"structure-{which}.json"), "w") as f:
            json.dump({"edge_structure": e}, f)
        with open(os.path.join(run, f"shapes-{which}.json"), "w") as f:
            json.dump({"structure_iou": i}, f)
    with open(os.path.join(run, "log.jsonl"), "w") as f:
        for r in rate:
            f.write(json.dumps({"it_per_s": r}) + "\n")
    with open(os.path.join(run, "compare.json"), "w") as f:
        f.write("{}\n")


def test_compare_table(work):
    out = os.path.join(work, "compare")
    write_run(f"{out}/shapes/graph-seed0", [300, 250, 260], (0.6, 0.5), (0.8, 0.7), [2.0, 2.0, 4.0])
    write_run(f"{out}/shapes/graph-seed1", [280, 290, 270], (0.4, 0.3), (0.6, 0.5), [1.0])
    os.makedirs(f"{out}/shapes/put-seed0")  # not finished: no compare.json
    text = run("compare-table.py", out, "--datasets", "shapes", "--variants", "graph", "put", "--seeds", "0", "1")
    print(text)
    # best FID 250 and 270: mean 260, sd 14.1; edge at best 0.6, 0.4: 0.500 +- 0.141; s/step 0.5 and 1.
    assert "### shapes (2 runs not finished)" in text, text
    assert "| graph, encoder | 2 | 260.0 ± 14.1 | 0.2600 ± 0.0141 | 265.0 ± 7.1 | 0.500 ± 0.141 |" in text, text
    assert "| 0.700 ± 0.141 | 0.600 ± 0.141 | 0.750 ± 0.354 |" in text, text
    assert "| graph, encoder | 0 | 200 | 250.0 | 0.2500 | 260.0 | 0.600 | 0.500 | 0.800 | 0.700 | 0.500 |" in text, text
    assert "put (PUT)" not in text, text


def main():
    work = sys.argv[1]
    shutil.rmtree(work, ignore_errors=True)  # a clean folder on every run
    os.makedirs(work)
    test_structure_score(work)
    test_compare_table(work)
    print("compare scripts: all checks passed")


if __name__ == "__main__":
    main()

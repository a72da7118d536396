"""The Python package's losses against what a PyTorch user runs instead, forward + backward, on
bench_losses.cpp's shapes (benchmarks/reference/bench_reference.py's inputs and weights: VGG16
relu3_1/relu4_1/relu4_3 channels, nc 256; "paper": one 256x256 image, 256 patches; "B:4": four).

Columns, per loss (graph_nce: patchgcl.GraphNCELoss; patch_nce: patchgcl.PatchNCELoss, CUT's head):
  * patchgcl: the C++ loss through torch.ops, called from Python;
  * C++: the same workload in the C++ benchmark binary (--cpp PATH; the process gets the same
    thread count through PATCHGCL_BENCH_THREADS), to show what calling from Python costs;
  * eager: the plain-PyTorch restatement of the released code (python/patchgcl_reference);
  * released: the released code paths (benchmarks/reference/bench_released.py: PatchGCL's GNNLoss
    on DGL + scipy, CUT's PatchSampleF + PatchNCELoss); needs DGL 1.1.3, so it runs where DGL
    imports and is left out with a message where it does not.
Each round times every column once (interleaved, as scripts/bench.sh does); the table has the
medians of the rounds and each column's ratio to patchgcl.

    # patchgcl into the venv that scripts/bench.sh made for the released column (DGL 1.1.3):
    build/bench/venv/bin/pip install --no-build-isolation .
    build/bench/venv/bin/python python/benchmarks/bench_losses.py --threads 1 --repetitions 7 \\
        --cpp build/benchmarks/patchgcl_benchmarks [--workloads paper B:4] [--losses graph_nce]

Run it with the Python that has patchgcl installed, from anywhere (it puts python/ and
benchmarks/reference/ at the end of sys.path itself)."""

import argparse
import json
import os
import statistics
import subprocess
import sys

import patchgcl  # the installed package, before python/ (its source tree) is on the path
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path += [os.path.join(ROOT, "python"), os.path.join(ROOT, "benchmarks", "reference")]
import bench_reference as common  # noqa: E402
from patchgcl_reference import reference  # noqa: E402

try:  # DGL 1.1.3 and scipy: the released GNNLoss
    import bench_released as released

    RELEASED_MISSING = None
except ImportError as error:
    released, RELEASED_MISSING = None, str(error)

MODULES = {"graph_nce": patchgcl.GraphNCELoss, "patch_nce": patchgcl.PatchNCELoss}
PARAMS = {"graph_nce": common.graph_params, "patch_nce": common.patch_params}
EAGER = {"graph_nce": reference.graph_nce_loss, "patch_nce": reference.patch_nce_loss}


def step_of(loss_fn, leaves):
    """One forward + backward, gradients dropped (set to None) as the C++ benchmark does; the
    step returns the loss, so that the columns can be checked to compute the same number."""

    def step():
        loss = loss_fn()
        loss.backward()
        for t in leaves:
            t.grad = None
        return loss.detach()

    return step


def columns(loss, batch, patches, image):
    """{column: step()} on the same inputs and weights for every column."""
    gen = torch.Generator().manual_seed(0)
    outputs, inputs, ids = common.make_inputs(batch, patches, image, gen)
    params = PARAMS[loss](gen)
    module = MODULES[loss](list(common.CHANNELS), num_patches=patches, nc=common.NC)
    module.load_state_dict({k: v.detach() for k, v in params.items()})
    steps = {
        "patchgcl": step_of(lambda: module(outputs, inputs, ids), list(module.parameters()) + outputs),
        "eager": step_of(
            lambda: common.per_image(EAGER[loss], outputs, inputs, ids, params), list(params.values()) + outputs
        ),
    }
    if released is not None:
        gen = torch.Generator().manual_seed(0)
        r_outputs, r_inputs, r_ids = common.make_inputs(batch, patches, image, gen)
        make = released.released_graph_nce if loss == "graph_nce" else released.released_patch_nce_case
        r_fn, r_params = make(gen)
        steps["released"] = step_of(lambda: r_fn(r_outputs, r_inputs, r_ids), list(r_params.values()) + r_outputs)
    return steps


def cpp_time(binary, loss, workload, threads, min_time):
    """ms per call of the C++ benchmark `<loss>/fwd+bwd/<workload>/real_time`, in its own process."""
    name = f"{loss}/fwd+bwd/{workload}/real_time"
    env = dict(os.environ, PATCHGCL_BENCH_THREADS=str(threads))
    out = subprocess.run(
        [
            binary,
            f"--benchmark_filter=^{name.replace('+', '[+]')}$",
            f"--benchmark_min_time={min_time}",
            "--benchmark_format=json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    rows = [b for b in json.loads(out)["benchmarks"] if b["name"] == name]
    if not rows:
        raise SystemExit(f"bench_losses.py: {binary} has no benchmark {name}")
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[rows[0]["time_unit"]]
    return rows[0]["real_time"] * scale


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every column")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per column and round")
    ap.add_argument("--repetitions", type=int, default=3, help="interleaved rounds; the table has medians")
    ap.add_argument("--workloads", nargs="*", default=["paper", "B:4"])
    ap.add_argument("--losses", nargs="*", default=["graph_nce", "patch_nce"], choices=sorted(MODULES))
    ap.add_argument("--cpp", help="the C++ benchmark binary (build/benchmarks/patchgcl_benchmarks)")
    args = ap.parse_args()
    common.pin_blas_threads(args.threads)  # Debian's torch leaves OpenBLAS's pool alone
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    known = [w[0] for w in common.workloads()]
    for w in args.workloads:
        if w not in known:
            ap.error(f"--workloads: unknown workload '{w}' (known: {', '.join(known)})")
    version = getattr(released, "TORCH_REPORTED", torch.__version__)  # before DGL's version shim
    print(
        f"torch {version}, patchgcl {patchgcl.__version__}, {args.threads} thread(s); "
        f"ms per forward+backward, medians of {args.repetitions} interleaved rounds"
    )
    if RELEASED_MISSING:
        print(f"released column left out: {RELEASED_MISSING} (it needs DGL 1.1.3 and scipy; see the docstring)")
    print(
        "| workload | loss | "
        + " | ".join(
            ["patchgcl"]
            + (["C++"] if args.cpp else [])
            + ["eager"]
            + ([] if RELEASED_MISSING else ["released"])
            + ["eager / patchgcl"]
            + ([] if RELEASED_MISSING else ["released / patchgcl"])
            + (["patchgcl / C++"] if args.cpp else [])
        )
        + " |"
    )
    print("|---|---|" + "---:|" * (3 + 2 * bool(args.cpp) + 2 * (not RELEASED_MISSING)))
    for name, batch, patches, image in common.workloads():
        if name not in args.workloads:
            continue
        for loss in args.losses:
            steps = columns(loss, batch, patches, image)
            values = {label: float(step()) for label, step in steps.items()}
            spread = max(abs(v - values["patchgcl"]) for v in values.values()) / abs(values["patchgcl"])
            if spread > 1e-4:  # float32: the columns sum in different orders, never by more
                raise SystemExit(f"bench_losses.py: {name} {loss}: the columns disagree: {values}")
            times = {k: [] for k in list(steps) + (["C++"] if args.cpp else [])}
            for _ in range(args.repetitions):
                for label, step in steps.items():
                    times[label].append(common.time_call(step, args.min_time)[0] * 1e3)
                if args.cpp:
                    times["C++"].append(cpp_time(args.cpp, loss, name, args.threads, args.min_time))
            med = {k: statistics.median(v) for k, v in times.items()}
            cells = [f"{med['patchgcl']:.2f}"] + ([f"{med['C++']:.2f}"] if args.cpp else []) + [f"{med['eager']:.2f}"]
            cells += [] if RELEASED_MISSING else [f"{med['released']:.2f}"]
            cells += [f"{med['eager'] / med['patchgcl']:.2f}x"]
            cells += [] if RELEASED_MISSING else [f"{med['released'] / med['patchgcl']:.2f}x"]
            cells += [f"{med['patchgcl'] / med['C++']:.2f}x"] if args.cpp else []
            print(f"| {name} | {loss} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

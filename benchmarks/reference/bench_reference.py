#!/usr/bin/env python3
"""Eager PyTorch timings of the same losses on the same shapes as benchmarks/bench_losses.cpp.

The losses are patchgcl_reference.reference (python/: the plain-torch restatement of the released
PatchGCL, CUT and PUT code that the parity fixtures come from), imported, not copied. That code
handles one image at a time, as the released implementations do; for B > 1 this script loops
over the images and averages (the same mean over B*N anchors as patchgcl; PUT's column sort
then runs per image rather than over the batch, which changes its value but not its cost).

    PYTHONPATH=python python3 benchmarks/reference/bench_reference.py --out py.json [--filter paper] [--threads 2] [--repetitions 5]

Output: Google Benchmark-like JSON ({"context": ..., "benchmarks": [{"name", "real_time", "cpu_time"
(of the whole process), "time_unit": "ms", "iterations"}]}) with the C++ benchmark names, so scripts/lib/bench-report.py can
join the two. Forward builds the autograd graph (as in training); forward+backward also drops
the gradients (set to None) each call, as the C++ side does.
"""

import argparse
import json
import os
import platform
import re
import sys
import time

import torch
from patchgcl_reference import reference

NC = 256
CHANNELS = (256, 512, 512)


def workloads():
    """Same names and shapes as bench_losses.cpp: (name, batch, patches, image side)."""
    out = [("paper", 1, 256, 256)]
    out += [(f"N:{n}", 1, n, 512) for n in (64, 256, 1024, 4096)]
    out += [(f"B:{b}", b, 256, 256) for b in (1, 2, 4, 8)]
    return out


def make_inputs(batch, patches, image, gen):
    sides = (image // 4, image // 8, image // 8)
    inputs, outputs, ids = [], [], []
    for c, s in zip(CHANNELS, sides):
        inputs.append(torch.relu(torch.randn(batch, c, s, s, generator=gen)))
        outputs.append(torch.relu(torch.randn(batch, c, s, s, generator=gen)).requires_grad_(True))
        ids.append(torch.randperm(s * s, generator=gen)[:patches])
    return outputs, inputs, ids


def normal(shape, gen):
    return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_(True)


def zeros(shape):
    return torch.zeros(*shape).requires_grad_(True)


def graph_params(gen):
    p = {}
    for i, c in enumerate(CHANNELS):
        p[f"embed_{i}.weight"], p[f"embed_{i}.bias"] = normal((NC, c), gen), zeros((NC,))
        p[f"gnn_{i}.lin.weight"], p[f"gnn_{i}.lin.bias"] = normal((NC, 3 * NC), gen), zeros((NC,))
        p[f"pools_{i}.0.proj.weight"], p[f"pools_{i}.0.proj.bias"] = normal((1, NC), gen), zeros((1,))
        p[f"gnn_pools_{i}.0.lin.weight"], p[f"gnn_pools_{i}.0.lin.bias"] = normal((NC, 2 * NC), gen), zeros((NC,))
    return p


def patch_params(gen):
    p = {}
    for i, c in enumerate(CHANNELS):
        p[f"mlp_{i}.0.weight"], p[f"mlp_{i}.0.bias"] = normal((NC, c), gen), zeros((NC,))
        p[f"mlp_{i}.2.weight"], p[f"mlp_{i}.2.bias"] = normal((NC, NC), gen), zeros((NC,))
    return p


def per_image(loss_fn, outputs, inputs, ids, params):
    """The reference functions take [1, C, H, W] maps; average over the batch's images."""
    batch = outputs[0].shape[0]
    total = 0.0
    for b in range(batch):
        total = total + loss_fn([o[b : b + 1] for o in outputs], [x[b : b + 1] for x in inputs], ids, params)
    return total / batch


def reference_loss(make_params, loss_fn):
    """A benchmark case: make(gen) -> (loss(outputs, inputs, ids), params), one image at a time."""

    def make(gen):
        params = make_params(gen)
        return (lambda outputs, inputs, ids: per_image(loss_fn, outputs, inputs, ids, params)), params

    return make


LOSSES = {
    "graph_nce": reference_loss(graph_params, reference.graph_nce_loss),
    "patch_nce": reference_loss(patch_params, reference.patch_nce_loss),
    "put": reference_loss(
        patch_params, lambda o, i, ids, p: reference.patch_nce_loss(o, i, ids, p, pruning="column_sort", k=5)
    ),
}


def time_call(step, min_time):
    """(wall seconds per call, calls, CPU seconds of the process per call)."""
    step()  # warm-up
    iterations, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / iterations, iterations, (time.process_time() - cpu_start) / iterations


def pin_blas_threads(threads):
    """Debian's torch does not pass torch.set_num_threads on to its OpenBLAS, which sizes its own
    pool from OPENBLAS_NUM_THREADS (else the number of cores) once, when it is loaded; and idle
    OpenMP workers that spin (OMP_WAIT_POLICY unset) take the cores from OpenBLAS's threads: at 2
    threads on 2 cores that made one GraphNCELoss call 3x slower. Where OPENBLAS_NUM_THREADS is not
    `threads` or OMP_WAIT_POLICY is unset, this re-runs the script with them set, as
    scripts/bench.sh does (OMP_WAIT_POLICY=PASSIVE)."""
    if threads and (os.environ.get("OPENBLAS_NUM_THREADS") != str(threads) or "OMP_WAIT_POLICY" not in os.environ):
        os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.execv(sys.executable, [sys.executable] + sys.argv)


def parse_args(description):
    """The command line shared with bench_released.py; sets torch's threads."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", help="JSON file (default: stdout only)")
    ap.add_argument("--filter", default="", help="regular expression on benchmark names")
    ap.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("PATCHGCL_BENCH_THREADS", "0")) or None,
        help="torch.set_num_threads (default: PATCHGCL_BENCH_THREADS, else torch's default)",
    )
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per benchmark (at least one call)")
    ap.add_argument(
        "--repetitions",
        type=int,
        default=1,
        help="time each benchmark this many times (one JSON entry each; the report takes the median)",
    )
    args = ap.parse_args()
    pin_blas_threads(args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    return args


def run(args, losses, context):
    """Times every (workload, loss, pass) matching --filter and writes the JSON report.

    `losses` maps a loss name to make(gen) -> (loss(outputs, inputs, ids), params); `context`
    says what was timed (implementation, versions)."""
    pattern = re.compile(args.filter)
    results = []
    for name, batch, patches, image in workloads():
        for loss_name, make in losses.items():
            for pass_name in ("fwd", "fwd+bwd"):
                bench = f"{loss_name}/{pass_name}/{name}"
                if not pattern.search(bench):
                    continue
                gen = torch.Generator().manual_seed(0)
                outputs, inputs, ids = make_inputs(batch, patches, image, gen)
                loss_fn, params = make(gen)
                leaves = list(params.values()) + outputs

                def step():
                    loss = loss_fn(outputs, inputs, ids)
                    if pass_name == "fwd+bwd":
                        loss.backward()
                        for t in leaves:
                            t.grad = None

                for _ in range(max(1, args.repetitions)):
                    seconds, iterations, cpu = time_call(step, args.min_time)
                    results.append(
                        {
                            "name": bench,
                            "real_time": seconds * 1e3,
                            "cpu_time": cpu * 1e3,
                            "time_unit": "ms",
                            "iterations": iterations,
                        }
                    )
                    print(f"{bench:<32} {seconds * 1e3:10.2f} ms  ({iterations} calls)", flush=True)

    report = {
        "context": dict(
            context,
            torch_threads=torch.get_num_threads(),
            python=platform.python_version(),
            date=time.strftime("%Y-%m-%d %H:%M:%S"),
        ),
        "benchmarks": results,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


def main():
    args = parse_args(__doc__.splitlines()[0])
    run(
        args,
        LOSSES,
        {
            "implementation": "eager PyTorch (python/patchgcl_reference/reference.py)",
            "torch_version": torch.__version__,
        },
    )


if __name__ == "__main__":
    main()

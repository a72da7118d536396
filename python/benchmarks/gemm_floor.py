"""The GEMM floor of a loss, measured: the loss's own matrix products, run alone, against the loss.

A loss's forward+backward cannot take less time than its matrix products. A floor computed as
FLOPs / (the peak of one large 2048^3 sgemm) is too low for the paper setting, whose products are
small (256 x 512 x 256 and below) and never reach that peak. This script measures the floor instead:

  1. one forward+backward of the loss under torch.profiler (record_shapes) lists every matrix
     product it runs (mm, addmm, bmm, baddbmm and their in-place forms, the outermost ones only:
     a CPU bmm runs one addmm_ per matrix inside itself), with its input shapes;
  2. the same products are then run back to back on random tensors of those shapes, into
     preallocated outputs (out=, or in place), nothing else;
  3. both are timed interleaved (rounds of the loss, then the products; medians), and the ratio
     floor / loss is printed: the share of the loss's time that is its GEMMs at the speed they
     reach in isolation. 100% would be a loss that does nothing but its products.

    python python/benchmarks/gemm_floor.py [--threads 1] [--repetitions 7] [--workloads paper] [--losses graph_nce patch_nce]

Run it with the Python that has patchgcl installed (the shapes and inputs are bench_losses.cpp's,
from benchmarks/reference/bench_reference.py)."""

import argparse
import collections
import os
import statistics
import sys

import patchgcl  # the installed package, before python/ (its source tree) is on the path
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path += [os.path.join(ROOT, "python"), os.path.join(ROOT, "benchmarks", "reference")]
import bench_reference as common  # noqa: E402

GEMMS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::baddbmm_"}
MODULES = {"graph_nce": patchgcl.GraphNCELoss, "patch_nce": patchgcl.PatchNCELoss}
PARAMS = {"graph_nce": common.graph_params, "patch_nce": common.patch_params}


def loss_step(loss, batch, patches, image):
    gen = torch.Generator().manual_seed(0)
    outputs, inputs, ids = common.make_inputs(batch, patches, image, gen)
    module = MODULES[loss](list(common.CHANNELS), num_patches=patches, nc=common.NC)
    module.load_state_dict({k: v.detach() for k, v in PARAMS[loss](gen).items()})
    leaves = list(module.parameters()) + outputs

    def step():
        module(outputs, inputs, ids).backward()
        for t in leaves:
            t.grad = None

    return step


def outermost_gemms(step):
    """[(op name, input shapes)] of every matrix product of one call, not nested in another one."""
    step()  # warm-up outside the profiler
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    events = sorted(prof.events(), key=lambda e: (e.time_range.start, -e.time_range.end))
    found, open_until = [], -1
    for e in events:
        if e.name not in GEMMS or e.time_range.start < open_until:
            continue
        found.append((e.name, [list(s) for s in e.input_shapes if s]))
        open_until = e.time_range.end
    return found


def replay_step(gemms):
    """The products alone, on random tensors of their shapes, into preallocated outputs."""
    calls = []
    for name, shapes in gemms:
        # The tensor arguments first (self, mat1, mat2), then any out= tensor; scalars have no shape.
        t = [torch.randn(s) for s in shapes]
        if name == "aten::mm":
            a, b = t[:2]
            out = torch.empty(a.shape[0], b.shape[1])
            calls.append(lambda a=a, b=b, out=out: torch.mm(a, b, out=out))
        elif name == "aten::bmm":
            a, b = t[:2]
            out = torch.empty(a.shape[0], a.shape[1], b.shape[2])
            calls.append(lambda a=a, b=b, out=out: torch.bmm(a, b, out=out))
        elif name == "aten::addmm":
            c, a, b = t[:3]
            out = torch.empty(a.shape[0], b.shape[1])
            calls.append(lambda c=c, a=a, b=b, out=out: torch.addmm(c, a, b, out=out))
        elif name == "aten::baddbmm":
            c, a, b = t[:3]
            out = torch.empty(a.shape[0], a.shape[1], b.shape[2])
            calls.append(lambda c=c, a=a, b=b, out=out: torch.baddbmm(c, a, b, out=out))
        else:  # the in-place forms: self is the output
            c, a, b = t[:3]
            fn = torch.Tensor.addmm_ if name == "aten::addmm_" else torch.Tensor.baddbmm_
            calls.append(lambda c=c, a=a, b=b, fn=fn: fn(c, a, b))

    def step():
        for call in calls:
            call()

    return step


def ms_per_call(step, seconds):
    return common.time_call(step, seconds)[0] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repetitions", type=int, default=7, help="interleaved rounds; medians")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per side and round")
    ap.add_argument("--workloads", nargs="*", default=["paper"])
    ap.add_argument("--losses", nargs="*", default=["graph_nce", "patch_nce"], choices=sorted(MODULES))
    args = ap.parse_args()
    common.pin_blas_threads(args.threads)  # Debian's torch leaves OpenBLAS's pool alone
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    known = {w[0]: w for w in common.workloads()}
    for w in args.workloads:
        if w not in known:
            ap.error(f"--workloads: unknown workload '{w}' (known: {', '.join(known)})")
    print(
        f"torch {torch.__version__}, patchgcl {patchgcl.__version__}, {args.threads} thread(s); ms per "
        f"forward+backward, medians of {args.repetitions} interleaved rounds"
    )
    print("| workload | loss | matrix products per call | loss ms | the products alone, ms | floor / loss |")
    print("|---|---|---:|---:|---:|---:|")
    for w in args.workloads:
        _, batch, patches, image = known[w]
        for loss in args.losses:
            step = loss_step(loss, batch, patches, image)
            gemms = outermost_gemms(step)
            replay = replay_step(gemms)
            loss_ms, floor_ms = [], []
            for _ in range(args.repetitions):
                loss_ms.append(ms_per_call(step, args.min_time))
                floor_ms.append(ms_per_call(replay, args.min_time))
            a, b = statistics.median(loss_ms), statistics.median(floor_ms)
            print(f"| {w} | {loss} | {len(gemms)} | {a:.2f} | {b:.2f} | {100 * b / a:.0f}% |", flush=True)
            if os.environ.get("GEMM_FLOOR_SHAPES"):
                for (name, shapes), n in sorted(collections.Counter((g[0], str(g[1])) for g in gemms).items()):
                    print(f"    {n} x {name} {shapes}")


if __name__ == "__main__":
    main()

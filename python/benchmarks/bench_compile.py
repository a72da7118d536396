"""Eager against torch.compile: one generator training step of the tiny CUT-style model of
python/examples/train_tiny_cut.py (encoder features of G(x) and x, patchgcl.GraphNCELoss called as
the released code calls it, backward), on CPU. The compiled step is the same function under
torch.compile(fullgraph=True) (inductor; dynamo traces the backward, trace_autograd_ops); the
optimizer step stays outside. Each round times both once, interleaved; the table has the medians.

    python python/benchmarks/bench_compile.py --threads 1 --repetitions 20 [--size 32 --patches 64]

Needs torch >= 2.4 (the loss ops' fake kernels); run it with the Python that has patchgcl."""

import argparse
import importlib.util
import os
import statistics
import time

import patchgcl
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_cut_generator():
    spec = importlib.util.spec_from_file_location(
        "train_tiny_cut", os.path.join(ROOT, "python", "examples", "train_tiny_cut.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Generator()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--patches", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    netG = tiny_cut_generator()
    netF = patchgcl.GraphNCELoss([8, 16], num_patches=args.patches, nc=16)
    real_A = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1

    def step(real_A):
        fake_B = netG(real_A)
        loss = netF(netG.features(fake_B), netG.features(real_A), args.patches)
        loss.backward()
        return loss.detach()

    with torch._dynamo.config.patch(trace_autograd_ops=True):
        compiled = torch.compile(step, fullgraph=True)
        t0 = time.perf_counter()
        compiled(real_A)
        first = time.perf_counter() - t0
        times = {"eager": [], "compiled": []}
        for fn in (step, compiled):  # warm-up, from cleared gradients as every timed call
            netG.zero_grad()
            netF.zero_grad()
            fn(real_A)
        for _ in range(args.repetitions):
            for name, fn in (("eager", step), ("compiled", compiled)):
                netG.zero_grad()
                netF.zero_grad()
                t0 = time.perf_counter()
                fn(real_A)
                times[name].append(time.perf_counter() - t0)
    eager, compiled_ms = (1000 * statistics.median(times[k]) for k in ("eager", "compiled"))
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {args.size}x{args.size}, "
        f"{args.patches} patches, median of {args.repetitions}"
    )
    print("| step | eager ms | compiled ms | eager / compiled | first compiled call s |")
    print("|---|---|---|---|---|")
    print(
        f"| G forward + GraphNCELoss + backward | {eager:.2f} | {compiled_ms:.2f} | {eager / compiled_ms:.2f} | {first:.1f} |"
    )


if __name__ == "__main__":
    main()

"""patchgcl.GraphNCELoss (the C++ loss through torch.ops) against the eager restatement of the
released GNNLoss (patchgcl_reference), forward + backward, on bench_losses.cpp's shapes
(benchmarks/reference/bench_reference.py's inputs and weights: VGG16 relu3_1/relu4_1/relu4_3
channels, nc 256; "paper": one 256x256 image, 256 patches).

    python python/benchmarks/bench_graph_nce.py [--threads 1] [--min-time 2] [--workloads paper B:4]

Run it with the Python that has patchgcl installed, from anywhere (it puts python/ and
benchmarks/reference/ at the end of sys.path itself)."""
import argparse
import os
import sys

import torch

import patchgcl  # the installed package, before python/ (its source tree) is on the path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path += [os.path.join(ROOT, "python"), os.path.join(ROOT, "benchmarks", "reference")]
import bench_reference as common  # noqa: E402
from patchgcl_reference import reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--workloads", nargs="*", default=["paper"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, patchgcl {patchgcl.__version__}, {args.threads} thread(s); "
          "ms per forward+backward")
    for name, batch, patches, image in common.workloads():
        if name not in args.workloads:
            continue
        gen = torch.Generator().manual_seed(0)
        outputs, inputs, ids = common.make_inputs(batch, patches, image, gen)
        params = common.graph_params(gen)
        module = patchgcl.GraphNCELoss(list(common.CHANNELS), num_patches=patches, nc=common.NC)
        module.load_state_dict({k: v.detach() for k, v in params.items()})

        def eager():
            loss = common.per_image(reference.graph_nce_loss, outputs, inputs, ids, params)
            loss.backward()
            for t in list(params.values()) + outputs:
                t.grad = None

        def cpp():
            module(outputs, inputs, ids).backward()
            module.zero_grad(set_to_none=True)
            for t in outputs:
                t.grad = None

        times = {}
        for label, step in (("patchgcl.GraphNCELoss", cpp), ("eager restatement", eager)):
            times[label] = common.time_call(step, args.min_time)[0] * 1e3
        ratio = times["eager restatement"] / times["patchgcl.GraphNCELoss"]
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()) + f" (eager / patchgcl {ratio:.2f}x)")


if __name__ == "__main__":
    main()

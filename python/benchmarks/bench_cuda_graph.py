"""patchgcl's losses on a GPU: one forward+backward run eagerly, then captured once in a CUDA graph
and replayed. On a GPU the loss's cost is mostly kernel launches (one or more per op), which a
graph replay issues as one launch; a capture also proves that forward+backward has no host
synchronisation (capturing a sync fails loudly), as does CUDA's sync-debug mode, checked first.

    python python/benchmarks/bench_cuda_graph.py [--workloads paper B:4] [--replays 200] [--json out.json]

Shapes are bench_losses.cpp's (benchmarks/reference/bench_reference.py: VGG16 relu3_1/relu4_1/
relu4_3 channels, nc 256; "paper": one 256x256 image, 256 patches), float32, with the sampled
locations given (static tensors, as a graph needs). Prints per loss and workload: kernels
launched per forward+backward (torch.profiler), eager ms, graph-replay ms, their ratio, and
whether the replayed loss and gradients equal the eager ones. Exits 2 without a CUDA device."""

import argparse
import json
import os
import sys

import patchgcl  # the installed package, before python/ (its source tree) is on the path
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path += [os.path.join(ROOT, "python"), os.path.join(ROOT, "benchmarks", "reference")]
import bench_reference as common  # noqa: E402


def make_loss(kind):
    channels = list(common.CHANNELS)
    if kind == "GraphNCELoss":
        return patchgcl.GraphNCELoss(channels, num_patches=256, nc=common.NC)
    return patchgcl.PatchNCELoss(channels, num_patches=256, nc=common.NC)


def cuda_ms(step, iters):
    """Median over 5 rounds of the mean time of `iters` calls, by CUDA events."""
    rounds = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            step()
        end.record()
        torch.cuda.synchronize()
        rounds.append(start.elapsed_time(end) / iters)
    return sorted(rounds)[2]


def kernels_per_call(step):
    from torch.profiler import ProfilerActivity, profile

    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def sync_free(step):
    """None when one call runs under sync-debug mode 'error'; else the error's first line."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        return None
    except RuntimeError as e:
        return str(e).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")


def run(kind, name, batch, patches, image, replays):
    gen = torch.Generator().manual_seed(0)
    outputs, inputs, ids = common.make_inputs(batch, patches, image, gen)
    dev = torch.device("cuda")
    outputs = [o.detach().to(dev).requires_grad_(True) for o in outputs]
    inputs = [i.to(dev) for i in inputs]
    ids = [i.to(dev) for i in ids]
    torch.manual_seed(0)
    loss_fn = make_loss(kind).to(dev)
    tensors = list(loss_fn.parameters()) + outputs

    def eager():
        for t in tensors:
            t.grad = None
        loss = loss_fn(outputs, inputs, ids)
        loss.backward()
        return loss

    # Warm-up on a side stream (the caching allocator and lazy inits), as torch.cuda.graph asks.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(side)
    sync_error = sync_free(eager)
    expected = eager().detach().clone()
    expected_grads = [t.grad.detach().clone() for t in tensors]
    kernels = kernels_per_call(eager)
    eager_ms = cuda_ms(eager, max(replays // 10, 10))

    for t in tensors:
        t.grad = None
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            static_loss = loss_fn(outputs, inputs, ids)
            static_loss.backward()
    except RuntimeError as e:
        return dict(
            loss=kind,
            workload=name,
            kernels=kernels,
            eager_ms=eager_ms,
            sync_error=sync_error,
            capture_error=str(e).splitlines()[0],
        )
    graph.replay()
    torch.cuda.synchronize()
    same = bool(torch.allclose(static_loss, expected, rtol=1e-5, atol=1e-6)) and all(
        torch.allclose(t.grad, g, rtol=1e-4, atol=1e-6) for t, g in zip(tensors, expected_grads)
    )
    graph_ms = cuda_ms(graph.replay, replays)
    return dict(
        loss=kind,
        workload=name,
        kernels=kernels,
        eager_ms=eager_ms,
        graph_ms=graph_ms,
        speedup=eager_ms / graph_ms,
        replay_equals_eager=same,
        sync_error=sync_error,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="*", default=["paper", "B:4"])
    ap.add_argument("--replays", type=int, default=200)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_cuda_graph.py: no CUDA device (torch.cuda.is_available() is False)")
        return 2
    print(f"torch {torch.__version__}, patchgcl {patchgcl.__version__}, {torch.cuda.get_device_name()}")
    rows, failed = [], False
    for kind in ("GraphNCELoss", "PatchNCELoss"):
        for name, batch, patches, image in common.workloads():
            if name in args.workloads:
                rows.append(run(kind, name, batch, patches, image, args.replays))
    print(
        f"{'loss':13} {'workload':8} {'kernels':>7} {'eager ms':>9} {'graph ms':>9} {'ratio':>6}  replay==eager  host syncs"
    )
    for r in rows:
        syncs = "none" if r["sync_error"] is None else r["sync_error"]
        if "capture_error" in r:
            print(
                f"{r['loss']:13} {r['workload']:8} {r['kernels']:7d} {r['eager_ms']:9.3f}  capture failed: {r['capture_error']}"
            )
            failed = True
            continue
        failed |= not r["replay_equals_eager"] or r["sync_error"] is not None
        print(
            f"{r['loss']:13} {r['workload']:8} {r['kernels']:7d} {r['eager_ms']:9.3f} {r['graph_ms']:9.3f} "
            f"{r['speedup']:6.1f}  {str(r['replay_equals_eager']):13}  {syncs}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch=torch.__version__, device=torch.cuda.get_device_name(), rows=rows), f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

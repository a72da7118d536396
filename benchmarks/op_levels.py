#!/usr/bin/env python3
"""Counts the ops of a LibTorch autograd-profiler trace (chrome-trace JSON, as written by
`patchgcl_step_profile --paper-trace`) per call at two levels: every event (what
scripts/op-profile.py counts), and the ops not nested in another op (the first level under the
autograd engine's own events: what the library itself dispatches, closer to the kernel launches
of a GPU, where e.g. a batched matmul is one call rather than LibTorch CPU's loop of per-matrix ops).

    benchmarks/op_levels.py trace.json [--calls 5] [--top 15]
"""

import argparse
import json
import re
from collections import Counter, defaultdict

ENGINE = ("autograd::engine", "torch::autograd")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--calls", type=int, default=1, help="loss calls in the trace")
    ap.add_argument("--top", type=int, default=15, help="most frequent first-level ops to list")
    args = ap.parse_args()
    text = open(args.trace).read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = json.loads(re.sub(r",\s*\]\s*$", "]", text.strip()))
    events = [e for e in (data["traceEvents"] if isinstance(data, dict) else data) if e.get("ph") == "X" and "dur" in e]
    by_tid = defaultdict(list)
    for e in events:
        by_tid[e.get("tid", 0)].append(e)
    first = Counter()
    for evs in by_tid.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [end, name]
        for e in evs:
            ts = float(e["ts"])
            while stack and ts >= stack[-1][0] - 1e-9:
                stack.pop()
            if not e["name"].startswith(ENGINE) and all(name.startswith(ENGINE) for _, name in stack):
                first[e["name"]] += 1
            stack.append([ts + float(e["dur"]), e["name"]])
    c = args.calls
    print(f"every event per call: {len(events) / c:.0f}")
    print(f"first-level ops per call: {sum(first.values()) / c:.0f}")
    for name, n in first.most_common(args.top):
        print(f"  {n / c:6.0f}  {name}")


if __name__ == "__main__":
    main()

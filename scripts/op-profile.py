#!/usr/bin/env python3
"""Sums a LibTorch autograd-profiler trace (chrome-trace JSON, as written by
torch::autograd::profiler::RecordProfile, e.g. `patchgcl_step_profile --paper-trace trace.json`)
by op name: self time (the op's time minus the ops it called), calls, share of the total.

    scripts/op-profile.py trace.json [--calls 20] [--top 25]
"""

import argparse
import json
import re
from collections import defaultdict


def read_events(path):
    text = open(path).read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = json.loads(re.sub(r",\s*\]\s*$", "]", text.strip()))  # tolerate a trailing comma
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def self_times(events):
    """Per thread, nest the complete events by containment and subtract each child's duration
    from its parent's."""
    by_tid = defaultdict(list)
    for e in events:
        by_tid[e.get("tid", 0)].append(e)
    totals, calls = defaultdict(float), defaultdict(int)
    top_level = 0.0
    for evs in by_tid.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [end, name, self]
        for e in evs:
            ts, dur = float(e["ts"]), float(e["dur"])
            while stack and ts >= stack[-1][0] - 1e-9:
                end, name, own = stack.pop()
                totals[name] += own
            if stack:
                stack[-1][2] -= dur
            else:
                top_level += dur
            calls[e["name"]] += 1
            stack.append([ts + dur, e["name"], dur])
        while stack:
            end, name, own = stack.pop()
            totals[name] += own
    return totals, calls, top_level


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--calls", type=int, default=1, help="loss calls in the trace (for per-call times)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    totals, calls, top_level = self_times(read_events(args.trace))
    if not totals:
        raise SystemExit(f"op_profile: no complete ('ph': 'X') events in {args.trace}")
    whole = sum(totals.values())
    print("| op | self ms per call | share | calls per call |\n|---|---:|---:|---:|")
    for name, us in sorted(totals.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"| `{name}` | {us / 1e3 / args.calls:.2f} | {100 * us / whole:.1f}% | {calls[name] / args.calls:.0f} |")
    print(f"| all ops | {whole / 1e3 / args.calls:.2f} | 100% | {sum(calls.values()) / args.calls:.0f} |")


if __name__ == "__main__":
    main()

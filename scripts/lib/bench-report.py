#!/usr/bin/env python3
"""Joins the C++ (Google Benchmark JSON), eager PyTorch and released-implementation timings into one
Markdown table and draws time vs N as an SVG (written by hand: no matplotlib needed).

    scripts/lib/bench-report.py cpp.json [py.json] [--released released.json] [--svg docs/benchmarks-time-vs-n.svg] [--markdown out.md]
"""

import argparse
import json
import math
import re

LOSSES = ("graph_nce", "patch_nce", "put")
# "real_time" (wall) or "cpu_time" (--time cpu: CPU time of the timing thread (C++) / the process
# (Python); on a loaded machine it leaves out the time spent waiting for a core, for 1 thread).
TIME_FIELD = "real_time"
LABEL = {"graph_nce": "GraphNCELoss", "patch_nce": "PatchNCELoss (CUT)", "put": "PUT"}


def load(paths):
    """One JSON file, or several separated by commas (rounds of scripts/bench.sh): their runs are
    pooled, the context is the first file's."""
    files = []
    for path in paths.split(","):
        with open(path) as f:
            files.append(json.load(f))
    data = dict(files[0], benchmarks=[b for d in files for b in d.get("benchmarks", [])])
    context = dict(data.get("context", {}))
    for key in ("sgemm_peak_gflops", "sgemm_peak_gflops_cpu"):  # one per round: their median
        peaks = sorted(float(d["context"][key]) for d in files if key in d.get("context", {}))
        if peaks:
            context[key] = peaks[len(peaks) // 2]
    data["context"] = context
    rows = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue  # aggregates of --benchmark_repetitions: keep the plain runs
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ms")]
        # Google Benchmark appends "/iterations:N" and "/real_time" to the registered names.
        name = re.sub(r"/(iterations:\d+|real_time)", "", b["name"])
        if TIME_FIELD not in b:
            raise SystemExit(f"bench_report: {b['name']} in {paths} has no {TIME_FIELD} (made by an older script?)")
        b = dict(b, name=name, ms=b[TIME_FIELD] * scale)
        rows.setdefault(b["name"], []).append(b)
    # With repetitions, the median run by time.
    return data.get("context", {}), {k: sorted(v, key=lambda r: r["ms"])[len(v) // 2] for k, v in rows.items()}


def fmt(x, digits=1):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}" if x >= 1 else f"{x:.{digits + 1}f}"


def workload_order(name):
    kind, _, value = name.partition(":")
    return ({"paper": 0, "N": 1, "B": 2}.get(kind, 3), int(value) if value else 0)


def ratio(slow, fast):
    return fmt(slow["ms"] / fast["ms"], 2) + "x" if slow and fast else "-"


def rate(c):
    """GFLOP/s in the time the table compares (the counter GFLOP/s is per wall second)."""
    return c["GFLOP"] / (c["ms"] * 1e-3) if c.get("GFLOP") else c.get("GFLOP/s", 0)


def table(cpp, py, rel, peak):
    workloads = sorted(
        {n.split("/")[2] for n in cpp if n.split("/")[0] in LOSSES and n.count("/") == 2}, key=workload_order
    )
    lines = [
        "| workload | loss | pass | C++ ms | eager ms | released ms | eager / C++ | released / C++ | "
        "C++ GFLOP/s | of peak | peak MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in workloads:
        for loss in LOSSES:
            for p in ("fwd", "fwd+bwd"):
                name = f"{loss}/{p}/{w}"
                c, e, r = cpp.get(name), py.get(name), rel.get(name)
                if c is None:
                    continue
                lines.append(
                    f"| {w} | {LABEL[loss]} | {p} | {fmt(c['ms'], 2)} | {fmt(e['ms'] if e else None, 2)} | "
                    f"{fmt(r['ms'] if r else None, 2)} | {ratio(e, c)} | {ratio(r, c)} | {fmt(rate(c))} | "
                    f"{fmt(100 * rate(c) / peak if peak else 0)}% | {fmt(c.get('peak_MiB'))} |"
                )
    return "\n".join(lines)


def blocks_table(cpp):
    lines = ["| block | pass | N | ms | GFLOP/s | of peak | peak MiB |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, c in sorted(cpp.items(), key=lambda kv: (kv[0].split("/")[1:3], workload_order(kv[0].split("/")[-1]))):
        if not name.startswith("block/"):
            continue
        _, block, p, n = name.split("/")
        lines.append(
            f"| {block} | {p} | {n[2:]} | {fmt(c['ms'], 3)} | {fmt(c.get('GFLOP/s'))} | "
            f"{fmt(100 * c.get('peak_frac', 0))}% | {fmt(c.get('peak_MiB'))} |"
        )
    return "\n".join(lines)


def targets(cpp, py, rel, peak):
    out = []
    for loss in ("graph_nce", "patch_nce"):
        r, c = rel.get(f"{loss}/fwd+bwd/paper"), cpp.get(f"{loss}/fwd+bwd/paper")
        if r and c:
            s = r["ms"] / c["ms"]
            out.append(
                f"- Paper setting, fwd+bwd, {LABEL[loss]} C++ vs the released implementation: {s:.2f}x faster "
                f"(target >= 2.5x: {'met' if s >= 2.5 else 'NOT met'})"
            )
    c = cpp.get("graph_nce/fwd+bwd/paper")
    if c and c.get("GFLOP") and peak:
        f = c["GFLOP"] / (c["ms"] * 1e-3) / peak  # in the time the table compares (wall or CPU)
        out.append(
            f"- Paper setting, fwd+bwd, GraphNCELoss at {100 * f:.0f}% of its GEMM floor (3.02 GFLOP at the "
            f"sgemm peak measured in the run, {peak:.1f} GFLOP/s) (target >= 80%: {'met' if f >= 0.8 else 'NOT met'})"
        )
    g, p = cpp.get("graph_nce/fwd+bwd/paper"), cpp.get("patch_nce/fwd+bwd/paper")
    if g and p:
        r = g["ms"] / p["ms"]
        out.append(
            f"- Paper setting, fwd+bwd, GraphNCELoss / PatchNCELoss (C++): {r:.2f}x "
            f"(target <= 1.25x: {'met' if r <= 1.25 else 'NOT met'})"
        )
    gp = py.get("graph_nce/fwd+bwd/paper"), py.get("patch_nce/fwd+bwd/paper")
    if all(gp):
        out.append(f"- Same ratio for the eager PyTorch version: {gp[0]['ms'] / gp[1]['ms']:.2f}x")
    for p_ in ("fwd", "fwd+bwd"):
        e, c = py.get(f"graph_nce/{p_}/paper"), cpp.get(f"graph_nce/{p_}/paper")
        if e and c:
            s = e["ms"] / c["ms"]
            out.append(
                f"- Paper setting, {p_}, GraphNCELoss C++ vs eager PyTorch: {s:.2f}x faster "
                f"(target >= 1.5x: {'met' if s >= 1.5 else 'NOT met'})"
            )
    for n in (1024, 4096):
        for p_ in ("fwd", "fwd+bwd"):
            c = cpp.get(f"graph_nce/{p_}/N:{n}")
            if c:
                f = c.get("peak_frac", 0)
                out.append(
                    f"- N = {n}, {p_}, GraphNCELoss: {100 * f:.0f}% of the measured sgemm peak "
                    f"({peak:.1f} GFLOP/s) (target >= 50%: {'met' if f >= 0.5 else 'NOT met'})"
                )
    grow = cpp.get("graph_nce/fwd+bwd/paper/calls:1000")
    if grow:
        out.append(
            f"- 1,000 fwd+bwd calls: live tensor bytes grew by {grow.get('live_growth_B', 0):.0f} B, "
            f"RSS by {grow.get('rss_growth_KiB', 0):.0f} KiB after the 10th call"
        )
    mem = [
        (int(n.split(":")[-1]), c.get("peak_MiB"))
        for n, c in cpp.items()
        if re.fullmatch(r"graph_nce/fwd\+bwd/N:\d+", n)
    ]
    if len(mem) >= 2:
        mem.sort()
        out.append(
            "- GraphNCELoss fwd+bwd peak tensor memory vs N: " + ", ".join(f"N={n}: {m:.1f} MiB" for n, m in mem)
        )
    return "\n".join(out)


def svg_plot(cpp, py, path, rel=None, pass_name="fwd+bwd"):
    """log-log time vs N, one line per loss and implementation."""
    series = []
    colours = {"graph_nce": "#1f77b4", "patch_nce": "#d62728", "put": "#2ca02c"}
    for loss in LOSSES:
        for impl, rows, dash in (("C++", cpp, ""), ("eager", py, "6,4"), ("released", rel or {}, "2,3")):
            pts = sorted(
                (int(n.split(":")[1]), r["ms"])
                for n, r in rows.items()
                if re.fullmatch(rf"{loss}/{re.escape(pass_name)}/N:\d+", n)
            )
            if pts:
                series.append((f"{LABEL[loss]} {impl}", colours[loss], dash, pts))
    if not series:
        return
    W, H, L, R, T, B = 720, 440, 70, 230, 40, 50
    xs = [x for s in series for x, _ in s[3]]
    ys = [y for s in series for _, y in s[3]]
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x):
        return L + (math.log10(x) - x0) / (x1 - x0) * (W - L - R)

    def py_(y):
        return H - B - (math.log10(y) - y0) / (y1 - y0) * (H - T - B)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{(W - R + L) / 2}" y="22" text-anchor="middle" font-size="14">'
        f"Loss {pass_name} time vs patches N (512x512 image, B = 1)</text>",
    ]
    for e in range(int(y0), int(y1) + 1):
        y = py_(10**e)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{10**e:g}</text>')
    for x in sorted(set(xs)):
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{(W - R + L) / 2}" y="{H - 12}" text-anchor="middle">patches N (log)</text>')
    out.append(
        f'<text x="16" y="{(H - B + T) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(H - B + T) / 2})">ms per call (log)</text>'
    )
    out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#333"/>')
    for i, (label, colour, dash, pts) in enumerate(series):
        d = " ".join(f"{px(x):.1f},{py_(y):.1f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py_(y):.1f}" r="3" fill="{colour}"/>')
        ly = T + 10 + 20 * i
        out.append(
            f'<line x1="{W - R + 15}" y1="{ly}" x2="{W - R + 45}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="2"{dash_attr}/>'
        )
        out.append(f'<text x="{W - R + 50}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cpp")
    ap.add_argument("py", nargs="?")
    ap.add_argument("--released", help="JSON of benchmarks/reference/bench_released.py")
    ap.add_argument(
        "--time",
        choices=("wall", "cpu"),
        default="wall",
        help="which time the table compares (cpu: only meaningful with 1 thread)",
    )
    ap.add_argument("--svg", help="write the time-vs-N plot here")
    ap.add_argument("--markdown", help="also write the report here")
    args = ap.parse_args()
    global TIME_FIELD
    TIME_FIELD = "cpu_time" if args.time == "cpu" else "real_time"
    ctx, cpp = load(args.cpp)
    pctx, py = load(args.py) if args.py else ({}, {})
    rctx, rel = load(args.released) if args.released else ({}, {})
    peak = float(ctx.get("sgemm_peak_gflops_cpu" if TIME_FIELD == "cpu_time" else "sgemm_peak_gflops", "0") or 0)
    head = [
        f"Machine: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, "
        f"load average {', '.join(f'{x:.2f}' for x in ctx.get('load_avg', [])) or '?'} at start; "
        f"LibTorch {ctx.get('torch_version', '?')} (BLAS {ctx.get('torch_blas', '?')}"
        f"{', OpenBLAS kernels ' + ctx['openblas_core'] if ctx.get('openblas_core') else ''}), "
        f"{ctx.get('torch_threads', '?')} thread(s); eager: torch {pctx.get('torch_version', '-')}, "
        f"{pctx.get('torch_threads', '-')} thread(s); released: torch {rctx.get('torch_version', '-')}, "
        f"DGL {rctx.get('dgl_version', '-')}, {rctx.get('torch_threads', '-')} thread(s). sgemm 2048^3 peak measured in the run: {peak:.1f} GFLOP/s. "
        f"Times: {'CPU' if TIME_FIELD == 'cpu_time' else 'wall'}.",
        "",
    ]
    report = "\n".join(
        head
        + [
            "### Losses",
            "",
            table(cpp, py, rel, peak),
            "",
            "### Building blocks (C++)",
            "",
            blocks_table(cpp),
            "",
            "### Targets",
            "",
            targets(cpp, py, rel, peak),
            "",
        ]
    )
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report)
    if args.svg:
        svg_plot(cpp, py, args.svg, rel)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The Markdown tables of scripts/compare-losses.sh from its run folders.

  compare-table.py OUT --datasets shapes monet --variants paper graph patchnce put --seeds 0 1 2

Per dataset: one row per variant with mean +- sd over the finished seeds (n) of the best
checkpoint's FID and KID, the last checkpoint's FID, the edge structure (scripts/structure-score.py)
of the best and the last checkpoint, the shape IoU of the best and the last (shapes only), and the
median seconds per training step; then the same values per seed. Runs without compare.json are
not finished and are left out (and counted).
"""

import argparse
import json
import os
import statistics

VARIANT_NAMES = {
    "paper": "graph, VGG16 (--mode patchgcl)",
    "graph": "graph, encoder",
    "patchnce": "patchnce (CUT)",
    "put": "put (PUT)",
}


def load(path):
    with open(path) as f:
        return json.load(f)


def seconds_per_step(run):
    """Median of 1 / it_per_s over the log's lines (robust to restarts and to the first slow steps)."""
    with open(os.path.join(run, "log.jsonl")) as f:
        rates = [json.loads(line).get("it_per_s", 0) for line in f if line.strip()]
    rates = [r for r in rates if r > 0]
    return statistics.median(1.0 / r for r in rates) if rates else float("nan")


def run_scores(run, dataset):
    """The numbers of one finished run, by column name."""
    table = load(os.path.join(run, "checkpoint_scores.json"))
    rows = table["checkpoints"]
    best = min(rows, key=lambda r: (r["fid"], r["step"]))
    last = max(rows, key=lambda r: r["step"])
    scores = {
        "best step": best["step"],
        "best FID": best["fid"],
        "KID at best": best["kid"],
        "last FID": last["fid"],
        "edge best": load(os.path.join(run, "structure-best.json"))["edge_structure"],
        "edge last": load(os.path.join(run, "structure-ckpt.json"))["edge_structure"],
    }
    if dataset == "shapes":
        scores["IoU best"] = load(os.path.join(run, "shapes-best.json"))["structure_iou"]
        scores["IoU last"] = load(os.path.join(run, "shapes-ckpt.json"))["structure_iou"]
    scores["s/step"] = seconds_per_step(run)
    return scores


def fmt(value, column):
    if column == "best step":
        return str(int(value))
    if column in ("KID at best",):
        return f"{value:.4f}"
    if column.startswith(("edge", "IoU")) or column == "s/step":
        return f"{value:.3f}"
    return f"{value:.1f}"


def mean_sd(values, column):
    if len(values) == 1:
        return fmt(values[0], column)
    return f"{fmt(statistics.mean(values), column)} ± {fmt(statistics.stdev(values), column)}"


def dataset_tables(out, dataset, variants, seeds):
    results, missing = {}, 0
    for variant in variants:
        for seed in seeds:
            run = os.path.join(out, dataset, f"{variant}-seed{seed}")
            if os.path.exists(os.path.join(run, "compare.json")):
                results.setdefault(variant, []).append((seed, run_scores(run, dataset)))
            else:
                missing += 1
    if not results:
        print(f"### {dataset}: no finished run ({missing} to go)\n")
        return
    columns = [c for c in next(iter(results.values()))[0][1] if c != "best step"]
    print(f"### {dataset}" + (f" ({missing} runs not finished)" if missing else "") + "\n")
    print("| variant | n | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for variant, runs in results.items():
        cells = [mean_sd([s[c] for _, s in runs], c) for c in columns]
        print(f"| {VARIANT_NAMES[variant]} | {len(runs)} | " + " | ".join(cells) + " |")
    print()
    per_seed = ["best step"] + columns
    print("| variant | seed | " + " | ".join(per_seed) + " |")
    print("|---|---:|" + "---:|" * len(per_seed))
    for variant, runs in results.items():
        for seed, s in runs:
            print(f"| {VARIANT_NAMES[variant]} | {seed} | " + " | ".join(fmt(s[c], c) for c in per_seed) + " |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", required=True)
    args = parser.parse_args()
    for dataset in args.datasets:
        dataset_tables(args.out, dataset, args.variants, args.seeds)


if __name__ == "__main__":
    main()

"""Correlation of the training-free proxies with NAS-Bench-201 ground truth (Abdelfattah et al., 2021, Table 1).

    python benchmarks/proxy_correlation.py --archs 1000 --data-dir ../shared/data/cifar10/cifar10-jpeg.tar.gz \
        --out runs/proxy-corr

Scores N architectures drawn uniformly (seeded) as ``archsearch proxies`` does (by default the zero-cost
code's protocol: each architecture on its own batch of 64 augmented CIFAR-10 training images) and writes
what it writes (scores.csv, correlations.json, scatter plots), plus a table next to the published Spearman
values. The zero-cost code correlates CIFAR-10 with the test accuracy of the runs trained on 25k images,
which the table lacks: the column "C10 valid" is the validation accuracy of those runs, "C10 test" the test
accuracy of the runs trained on all 50k. ``--threads`` caps torch's CPU threads (the study is CPU-bound).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from archsearch.cli.studies import add_proxies_arguments, cmd_proxies
from archsearch.utils.io import write_text_atomic

#: Spearman on all 15,625 NB201 cells (Abdelfattah et al., 2021, Table 1): CIFAR-10, CIFAR-100
PUBLISHED = {
    "synflow": (0.74, 0.76), "jacob_cov": (0.73, 0.70), "snip": (0.60, 0.64),
    "grad_norm": (0.59, 0.64), "grasp": (0.51, 0.55), "fisher": (0.36, 0.39),
}


def table(correlations: dict, n: int, seed: int) -> str:
    lines = [f"N = {n} architectures, seed {seed}", "",
             "| proxy | n | C10 test | C10 valid | published C10 | C100 test | published C100 | IN16 test |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, per in correlations.items():
        pub = PUBLISHED.get(name, (float("nan"), float("nan")))
        lines.append(f"| {name} | {per['cifar10']['n']} | {per['cifar10']['spearman']:.3f} | "
                     f"{per['cifar10-valid']['spearman']:.3f} | {pub[0]:.2f} | {per['cifar100']['spearman']:.3f} | "
                     f"{pub[1]:.2f} | {per['ImageNet16-120']['spearman']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_proxies_arguments(parser)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cmd_proxies(args)
    out = Path(args.out)
    correlations = json.loads((out / "correlations.json").read_text())
    import csv

    with open(out / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    seconds = {"all": sum(float(r["seconds"]) for r in rows) / max(1, len(rows))}
    text = table(correlations, len(rows), args.seed)
    text += f"\nmean seconds per architecture, all proxies together: {seconds['all']:.2f}\n"
    write_text_atomic(out / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()

"""A bench study's runs summarised: mean and standard deviation per strategy, the papers' "mean ± std"
table, and best-so-far curves against budget. The published rows both paper tables set beside ours live
here: the black-box strategies' (``bench``) and the weight-sharing methods' (``compare``)."""

from __future__ import annotations

import warnings

import numpy as np

#: NAS-Bench-201 paper, Table 5 (CIFAR-10 test accuracy, 12,000 s budget, 12-epoch validation objective)
PUBLISHED_CIFAR10 = {"random": (93.70, 0.36), "reinforce": (93.85, 0.37), "evolution": (93.92, 0.30),
                     "bohb": (93.61, 0.52)}


#: NAS-Bench-201's one-shot rows: (search seconds or None, ((mean, std) of CIFAR-10 valid, CIFAR-10 test,
#: CIFAR-100 valid, CIFAR-100 test, ImageNet16-120 valid, ImageNet16-120 test)). Accuracies: NAS-Bench-201
#: paper (Dong & Yang, ICLR 2020), Table 5, as quoted "from the paper of NAS-Bench-201" in Wang et al.,
#: "ReLIZO", NeurIPS 2024, Table 2 (first block); the GDAS row also as quoted in GENIUS (Zheng et al.,
#: "Can GPT-4 Perform Neural Architecture Search?", 2023), Table 1. DARTS' row is the all-skip cell
#: (index 1835), which the package's own table reproduces (docs/benchmarks.md). The paper's versions differ in some rows; search seconds are those TE-NAS (Chen,
#: Gong & Wang, ICLR 2021), Table 1 ("Search Cost (GPU sec.)") quotes beside test accuracies that match
#: these (DARTS-V1, DARTS-V2; GDAS on CIFAR-10 and CIFAR-100), None where its accuracies are another
#: version's (ENAS, RSPS) or it has no row (SETN).
PUBLISHED_ONE_SHOT = {
    "DARTS-V1": (10889.87,
                 ((39.77, 0.00), (54.30, 0.00), (15.03, 0.00), (15.61, 0.00), (16.43, 0.00), (16.32, 0.00))),
    "DARTS-V2": (29901.67,
                 ((39.77, 0.00), (54.30, 0.00), (15.03, 0.00), (15.61, 0.00), (16.43, 0.00), (16.32, 0.00))),
    "GDAS": (28925.91,
             ((89.89, 0.08), (93.61, 0.09), (71.34, 0.04), (70.70, 0.30), (41.59, 1.33), (41.71, 0.98))),
    "SETN": (None,
             ((84.04, 0.28), (87.64, 0.00), (58.86, 0.06), (59.05, 0.24), (33.06, 0.02), (32.52, 0.21))),
    "ENAS": (None,
             ((37.51, 3.19), (53.89, 0.58), (13.37, 2.35), (13.96, 2.33), (15.06, 1.95), (14.84, 2.10))),
    "RSPS": (None,
             ((80.42, 3.58), (84.07, 3.61), (52.12, 5.55), (52.31, 5.77), (27.22, 3.24), (26.28, 3.09))),
}

#: the methods' own papers on NAS-Bench-201, same layout. DrNAS: Chen et al., "DrNAS: Dirichlet Neural
#: Architecture Search", ICLR 2021, its NAS-Bench-201 table (as also quoted in GENIUS, Table 1; no search
#: time there). BaLeNAS (CVPR 2022) is left out: we could not check its NAS-Bench-201 numbers against the
#: paper.
PUBLISHED_OWN_PAPER = {
    "DrNAS": (None,
              ((91.55, 0.00), (94.36, 0.00), (73.49, 0.00), (73.51, 0.00), (46.37, 0.00), (46.34, 0.00))),
}


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the deviation of one value is 0."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def pm(mean: float, std: float) -> str:
    """The papers' "mean ± std", two decimals."""
    return f"{mean:.2f} ± {std:.2f}"


def summarise(runs: list[dict]) -> dict:
    """{strategy: test_mean, test_std, valid_mean, valid_std, queries_mean}, strategies in the runs' order."""
    summary = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == name]
        test_mean, test_std = mean_std([r["test"] for r in mine])
        valid_mean, valid_std = mean_std([r["valid"] for r in mine])
        summary[name] = {"test_mean": test_mean, "test_std": test_std, "valid_mean": valid_mean,
                         "valid_std": valid_std, "queries_mean": float(np.mean([r["queries"] for r in mine]))}
    return summary


def markdown_table(summary: dict, protocol: str, anchors: dict | None = None) -> str:
    lines = [f"Protocol: {protocol}", "", "| strategy | validation | test | queries |" + (" published test |" if anchors else ""),
             "| --- | --- | --- | --- |" + (" --- |" if anchors else "")]
    for name, s in summary.items():
        row = f"| {name} | {pm(s['valid_mean'], s['valid_std'])} | {pm(s['test_mean'], s['test_std'])} " \
              f"| {s['queries_mean']:.1f} |"
        if anchors:
            row += f" {pm(*anchors[name])} |" if name in anchors else " – |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def curves(runs: list[dict], horizon: float, by: str) -> dict:
    """Best-so-far test accuracy on a grid of budgets: mean and a 95 % normal band (1.96 standard errors)."""
    grid = np.linspace(0.0, horizon, 201)[1:] if by == "seconds" else np.arange(1, int(horizon) + 1, dtype=float)
    column = 0 if by == "seconds" else 1
    out = {"by": by, "grid": grid.tolist(), "strategies": {}}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        rows = []
        for r in (r for r in runs if r["strategy"] == name):
            steps = np.array(r["best_so_far"], dtype=float).reshape(-1, 4)
            if not len(steps):  # a budget too small for one query: nothing reached, anywhere
                rows.append(np.full_like(grid, np.nan))
                continue
            at = np.searchsorted(steps[:, column], grid, side="right") - 1  # last improvement at or before
            rows.append(np.where(at >= 0, steps[np.maximum(at, 0), 3], np.nan))
        values = np.array(rows)
        count = np.sum(~np.isnan(values), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # grid points no run has reached yet
            mean = np.nanmean(np.where(count > 0, values, 0.0), axis=0) if len(rows) else grid * np.nan
            sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(count) if len(rows) > 1 else np.zeros_like(grid)
        band = 1.96 * np.nan_to_num(sem)
        out["strategies"][name] = {"mean": mean.tolist(), "lower": (mean - band).tolist(),
                                   "upper": (mean + band).tolist()}
    return out

"""A bench study's runs summarised: mean and standard deviation per strategy, the papers' "mean ± std"
table, and best-so-far curves against budget."""

from __future__ import annotations

import warnings

import numpy as np

#: NAS-Bench-201 paper, Table 5 (CIFAR-10 test accuracy, 12,000 s budget, 12-epoch validation objective)
PUBLISHED_CIFAR10 = {"random": (93.70, 0.36), "reinforce": (93.85, 0.37), "evolution": (93.92, 0.30),
                     "bohb": (93.61, 0.52)}


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(runs: list[dict]) -> dict:
    """{strategy: test_mean, test_std, valid_mean, valid_std, queries_mean}, strategies in the runs' order."""
    summary = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == name]
        test_mean, test_std = _mean_std([r["test"] for r in mine])
        valid_mean, valid_std = _mean_std([r["valid"] for r in mine])
        summary[name] = {"test_mean": test_mean, "test_std": test_std, "valid_mean": valid_mean,
                         "valid_std": valid_std, "queries_mean": float(np.mean([r["queries"] for r in mine]))}
    return summary


def markdown_table(summary: dict, protocol: str, anchors: dict | None = None) -> str:
    lines = [f"Protocol: {protocol}", "", "| strategy | validation | test | queries |" + (" published test |" if anchors else ""),
             "| --- | --- | --- | --- |" + (" --- |" if anchors else "")]
    for name, s in summary.items():
        row = f"| {name} | {s['valid_mean']:.2f} ± {s['valid_std']:.2f} | {s['test_mean']:.2f} ± {s['test_std']:.2f} " \
              f"| {s['queries_mean']:.1f} |"
        if anchors:
            row += f" {anchors[name][0]:.2f} ± {anchors[name][1]:.2f} |" if name in anchors else " – |"
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

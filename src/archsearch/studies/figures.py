"""The studies' figures: bench curves, proxy scatter plots, optimizer convergence. Each function returns a
figure for ``archsearch.report.save_png``."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from archsearch.report.png import new_figure


def curves_figure(data: dict, title: str) -> Figure:
    """Best-so-far test accuracy against budget (``bench_summary.curves``), mean and 95 % band."""
    fig = new_figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    grid = np.array(data["grid"])
    for name, c in data["strategies"].items():
        mean = np.array(c["mean"], dtype=float)
        ax.plot(grid, mean, label=name)
        ax.fill_between(grid, np.array(c["lower"], dtype=float), np.array(c["upper"], dtype=float), alpha=0.2)
    finite = np.concatenate([np.array(c["mean"], dtype=float) for c in data["strategies"].values()])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        ax.set_ylim(np.quantile(finite, 0.05) - 0.5, finite.max() + 0.5)
    ax.set_xlabel("simulated seconds" if data["by"] == "seconds" else "queries")
    ax.set_ylabel("test accuracy of best-by-objective (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def scatter_figure(name: str, values: np.ndarray, accuracy: np.ndarray, spearman: float, dataset: str) -> Figure:
    """A proxy's scores against 200-epoch test accuracy; a log axis for positive scores spanning decades."""
    keep = np.isfinite(values)
    fig = new_figure(figsize=(4.5, 3.5), dpi=120)
    ax = fig.subplots()
    positive = keep & (values > 0)
    log_x = positive.sum() == keep.sum() and keep.any() and values[keep].max() / values[keep].min() > 1e3
    ax.scatter(values[keep], accuracy[keep], s=6, alpha=0.6)
    if log_x:
        ax.set_xscale("log")
    ax.set_title(f"{name}: Spearman {spearman:.3f} (n={int(keep.sum())})")
    ax.set_xlabel(name)
    ax.set_ylabel(f"{dataset} test accuracy (%), 200 epochs")
    fig.tight_layout()
    return fig


def convergence_figure(traces: dict[str, np.ndarray], title: str, minimum: float) -> Figure:
    """Mean and one standard deviation band of each optimizer's trace, against evaluations (log axis)."""
    fig = new_figure(figsize=(8, 5))
    ax = fig.subplots()
    for label, t in traces.items():
        steps = np.arange(1, t.shape[1] + 1)
        mean, std = t.mean(axis=0), t.std(axis=0)
        style = "--" if label.startswith("adam ") else "-"
        ax.plot(steps, mean, style, label=label, linewidth=1.2)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
    ax.axhline(minimum, color="k", linewidth=0.8, linestyle=":", label="global minimum")
    ax.set_xscale("log")
    ax.set_xlabel("function evaluations")
    ax.set_ylabel("f (Adam, DSCD: current point; uniform, CMA-ES: best so far)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


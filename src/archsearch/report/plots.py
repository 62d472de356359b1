"""Plots of a search run from its metrics: what a collapse looks like while it happens."""

from __future__ import annotations

from pathlib import Path

from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS
from archsearch.report.png import new_figure, save_png


#: how every plot of a run is rendered
PNG_OPTIONS = {"dpi": 110, "bbox_inches": "tight"}


def _subplots(*grid, **options):
    """pyplot.subplots without pyplot."""
    figure_options = {key: options.pop(key) for key in ("figsize", "dpi") if key in options}
    fig = new_figure(**figure_options)
    return fig, fig.subplots(*grid, **options)


def plot_op_weights(history: list[dict], path: str | Path, op_names=None) -> None:
    """Relaxed op weight per edge over epochs, one panel per edge (and per cell type)."""
    epochs = [r["epoch"] for r in history]
    cells = history[-1]["op_weights"]
    n_edges = sum(len(w) for w in cells.values())
    cols = min(n_edges, 7)
    rows = -(-n_edges // cols)
    fig, axes = _subplots(rows, cols, figsize=(2.4 * cols, 2.0 * rows), sharey=True, squeeze=False)
    panel = 0
    for cell, weights in cells.items():
        for edge in range(len(weights)):
            ax = axes[panel // cols][panel % cols]
            series = [[r["op_weights"][cell][edge][k] for r in history] for k in range(len(weights[edge]))]
            for k, values in enumerate(series):
                ax.plot(epochs, values, label=op_names[k] if op_names else str(k))
            ax.set_title(f"{cell} edge {edge}", fontsize=8)
            ax.tick_params(labelsize=7)
            panel += 1
    for extra in range(panel, rows * cols):
        axes[extra // cols][extra % cols].axis("off")
    axes[0][0].legend(fontsize=6, loc="best")
    fig.suptitle("relaxed op weights per edge", y=1.06)
    save_png(fig, path, **PNG_OPTIONS)


def plot_series(history: list[dict], key: str, path: str | Path, title: str, ylabel: str) -> None:
    points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    fig, ax = _subplots(figsize=(5, 3.2))
    if points:
        ax.plot(*zip(*points), marker="o", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    save_png(fig, path, **PNG_OPTIONS)


def plot_ground_truth(history: list[dict], path: str | Path) -> None:
    fig, ax = _subplots(figsize=(5, 3.2))
    epochs = [r["epoch"] for r in history]
    for dataset in NB201_DATASETS:
        ax.plot(epochs, [r["ground_truth"][dataset]["test"] for r in history], marker="o", markersize=3,
                label=dataset)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NAS-Bench-201 test accuracy (%)")
    ax.set_title("ground truth of the selected cell")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_png(fig, path, **PNG_OPTIONS)


def plot_distribution(history: list[dict], path: str | Path, op_names=None) -> None:
    """BaLeNAS: mu and sigma of each op (averaged over edges) and the architecture entropy over epochs."""
    epochs = [r["epoch"] for r in history]
    fig, axes = _subplots(1, 3, figsize=(13, 3.2))
    for cell in history[-1]["mu"]:
        n_ops = len(history[-1]["mu"][cell][0])
        for k in range(n_ops):
            label = f"{cell}:{op_names[k] if op_names else k}"
            mu = [sum(row[k] for row in r["mu"][cell]) / len(r["mu"][cell]) for r in history]
            sigma = [sum(row[k] for row in r["sigma"][cell]) / len(r["sigma"][cell]) for r in history]
            axes[0].plot(epochs, mu, label=label)
            axes[1].plot(epochs, sigma, label=label)
    axes[2].plot(epochs, [r["arch_entropy"] for r in history], marker="o", markersize=3)
    axes[2].axhline(history[-1]["arch_entropy_max"], color="grey", linestyle="--", label="uniform")
    for ax, title in zip(axes, ("mean mu per op (over edges)", "mean sigma per op (over edges)",
                                "entropy of q over architectures (nats)")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    axes[2].legend(fontsize=7)
    save_png(fig, path, **PNG_OPTIONS)


def plot_search(history: list[dict], out_dir: str | Path, op_names=None, space=None) -> list[Path]:
    """Write the run's plots; returns their paths. ``space``: the searched space, where known."""
    out_dir = Path(out_dir)
    if not history:
        return []
    written = [out_dir / "op_weights.png", out_dir / "hessian_eigenvalue.png", out_dir / "skip_count.png"]
    plot_op_weights(history, written[0], op_names)
    plot_series(history, "hessian_max_eigenvalue", written[1], "dominant Hessian eigenvalue of L_val (alpha)",
                "eigenvalue")
    plot_series(history, "skip_count", written[2], "skip connections in the selected cell", "count")
    if all("sigma" in r for r in history):
        written.append(out_dir / "distribution.png")
        plot_distribution(history, written[-1], op_names)
    if all("ground_truth" in r for r in history):
        written.append(out_dir / "ground_truth.png")
        plot_ground_truth(history, written[-1])
    return written

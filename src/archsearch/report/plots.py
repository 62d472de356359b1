"""Plots of a search run from its metrics (the records of metrics.jsonl): what a collapse looks like while it
happens.

``search_figures`` builds each plot as a ``Figure`` keyed by its file name; ``plot_search`` writes them, and
the drawing of the current cell when it is handed the space. A run rewrites them every epoch, so each figure
is laid out in inches up front rather than fitted at save time (``bbox_inches="tight"`` renders twice).
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.collections import LineCollection
from matplotlib.ticker import MaxNLocator

from archsearch.errors import ConfigError
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS
from archsearch.report.draw import draw_cells, op_colour
from archsearch.report.png import new_figure, save_png

#: resolution of every plot of a run
DPI = 100
#: points are marked while a curve has at most this many
MARKERS_UP_TO = 30
TITLE, LABEL, TICK = 10, 9, 8  # font sizes (points)
#: panel size of op_weights.png (inches)
PANEL_W, PANEL_H = 1.9, 1.45


def _figure(width: float, height: float, left=0.75, right=0.25, top=0.45, bottom=0.55, **spacing):
    """A figure of ``width`` x ``height`` inches whose subplots leave the given margins (inches)."""
    fig = new_figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        **spacing)
    return fig


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _points(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of the records where ``key`` holds a number: None and NaN (no estimate that epoch,
    no validation batch during a warm-up) are left out."""
    pairs = [(r["epoch"], r[key]) for r in history if _finite(r.get(key))]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _marks(n_points: int) -> dict:
    return {"marker": "o", "markersize": 3.5} if n_points <= MARKERS_UP_TO else {}


def _epoch_axis(ax, history: list[dict], xlabel: bool = True) -> None:
    """Integer epoch ticks over the run's epochs, readable fonts, a light grid."""
    first, last = history[0]["epoch"], history[-1]["epoch"]
    pad = max(0.5, 0.02 * (last - first))
    ax.set_xlim(first - pad, last + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if xlabel:
        ax.set_xlabel("epoch", fontsize=LABEL)
    ax.tick_params(labelsize=TICK)
    ax.grid(alpha=0.3)


def _series_figure(history: list[dict], key: str, title: str, ylabel: str):
    fig = _figure(5.6, 3.4)
    ax = fig.add_subplot()
    epochs, values = _points(history, key)
    ax.plot(epochs, values, color="#1f77b4", **_marks(len(values)))
    _epoch_axis(ax, history)
    ax.set_title(title, fontsize=TITLE, y=1.0)  # a set height: no measuring of the ticks
    ax.set_ylabel(ylabel, fontsize=LABEL)
    return fig, ax, values


def eigenvalue_figure(history: list[dict]):
    """The largest Hessian eigenvalue of L_val in alpha at the epochs it was estimated; the axis includes 0."""
    fig, ax, values = _series_figure(history, "hessian_max_eigenvalue",
                                     "largest Hessian eigenvalue of L_val (alpha)", "eigenvalue")
    low, high = min([0.0, *values]), max([0.0, *values])
    pad = 0.06 * (high - low) or 1.0
    ax.set_ylim(low - (pad if low < 0 else 0), high + pad)
    if not values:
        ax.text(0.5, 0.5, "not estimated yet (hessian_every)", transform=ax.transAxes, ha="center",
                va="center", fontsize=LABEL, color="#666666")
    return fig


def max_skips(history: list[dict], space=None) -> int:
    """How many skip connections the counted cell could hold: the edges a genotype keeps in the first cell
    type (what ``diagnostics.cells.skip_count`` counts); without the space, the first cell's alpha rows."""
    if space is not None:
        cells = space.cell_edges(space.parse(history[-1]["genotype"]))
        return sum(op != "concat" for _, _, op in next(iter(cells.values())))
    return len(next(iter(history[-1]["op_weights"].values())))


def skip_count_figure(history: list[dict], space=None):
    """Skip connections in the selected cell, on an axis from 0 to the most the cell could hold."""
    fig, ax, values = _series_figure(history, "skip_count", "skip connections in the selected cell", "count")
    top = max([max_skips(history, space), *values])
    ax.set_ylim(0, top + 0.25)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def supernet_figure(history: list[dict]):
    """The supernet's loss (one panel) and accuracy (the other) on the training and validation batches."""
    fig = _figure(10.0, 3.6, right=0.3, wspace=0.28)
    axes = fig.subplots(1, 2)
    for ax, metric, title in zip(axes, ("loss", "acc"), ("supernet loss", "supernet accuracy (%)")):
        for split, colour in (("train", "#1f77b4"), ("valid", "#d62728")):
            epochs, values = _points(history, f"{split}_{metric}")
            ax.plot(epochs, values, color=colour, label=split, **_marks(len(values)))
        _epoch_axis(ax, history)
        ax.set_title(title, fontsize=TITLE, y=1.0)
        ax.legend(fontsize=LABEL, frameon=False)
    axes[1].set_ylim(bottom=0)
    return fig


def ground_truth_figure(history: list[dict]):
    fig = _figure(5.6, 3.4)
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for dataset in NB201_DATASETS:
        ax.plot(epochs, [r["ground_truth"][dataset]["test"] for r in history], label=dataset,
                **_marks(len(epochs)))
    _epoch_axis(ax, history)
    ax.set_ylabel("NAS-Bench-201 test accuracy (%)", fontsize=LABEL)
    ax.set_title("ground truth of the selected cell", fontsize=TITLE, y=1.0)
    ax.legend(fontsize=TICK, frameon=False)
    return fig


def distribution_figure(history: list[dict], op_names=None):
    """BaLeNAS: mu and sigma of each op (averaged over edges) and the architecture entropy over epochs."""
    fig = _figure(14.0, 3.8, right=1.9, wspace=0.3)
    axes = fig.subplots(1, 3)
    epochs = [r["epoch"] for r in history]
    for style, cell in zip(("-", "--", ":", "-."), history[-1]["mu"]):
        for k in range(len(history[-1]["mu"][cell][0])):
            name = _op_name(op_names, k)
            for ax, key in zip(axes, ("mu", "sigma")):
                mean = [sum(row[k] for row in r[key][cell]) / len(r[key][cell]) for r in history]
                ax.plot(epochs, mean, linestyle=style, color=op_colour(name), label=f"{cell}: {name}")
    axes[2].plot(epochs, [r["arch_entropy"] for r in history], color="#1f77b4", **_marks(len(epochs)))
    axes[2].axhline(history[-1]["arch_entropy_max"], color="grey", linestyle="--", label="uniform")
    titles = ("mean mu per op (over edges)", "mean sigma per op (over edges)", "entropy of q over architectures (nats)")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=TITLE, y=1.0)
        _epoch_axis(ax, history)
    axes[1].legend(fontsize=TICK - 1, frameon=False, loc="upper left", bbox_to_anchor=(2.25, 1.0))
    axes[2].legend(fontsize=TICK, frameon=False)
    return fig


# -- op weights --------------------------------------------------------------------------------------------
def _op_name(op_names, k: int) -> str:
    return op_names[k] if op_names is not None and k < len(op_names) else f"op {k}"


def node_names(inputs, nodes) -> dict[int, str]:
    """The names ``space.cell_edges`` gives a cell's nodes: one input is node 0 of the numbering (NB201);
    with several, the inputs are the previous cells' outputs c_{k-2}, c_{k-1} and the other nodes count
    from 0 (DARTS)."""
    inputs = sorted(inputs)
    if len(inputs) == 1:
        return {node: str(node) for node in nodes}
    names = {node: f"c_{{k-{len(inputs) - i}}}" for i, node in enumerate(inputs)}
    names.update({node: str(node - len(inputs)) for node in nodes if node not in names})
    return names


def edge_panels(space, n_rows: int) -> list[tuple[int, int, str]]:
    """(grid row, grid column, title) of each alpha row's panel: one row of panels per node, its inputs
    left to right, titled "node <- input" (as the cell drawing names them) where the space describes its cell
    as a graph with this many rows; else "edge i" in rows of 7."""
    graph = space.cell_graph() if space is not None else None
    if graph is None or len(graph[0]) != n_rows:
        cols = min(n_rows, 7)
        return [(i // cols, i % cols, f"edge {i}") for i in range(n_rows)]
    edges, inputs, _ = graph
    names = node_names(inputs, {n for edge in edges for n in edge})
    targets = sorted({target for _, target in edges})
    sources = {t: sorted(s for s, tt in edges if tt == t) for t in targets}
    return [(targets.index(t), sources[t].index(s), f"{names[t]} \u2190 {names[s]}") for s, t in edges]


def _block(ax, panels, weights, epochs, y_range, op_names, marks) -> list:
    """One cell type's edges as a grid of panels drawn on one axes (one Line2D per op across the panels, a
    matplotlib axes per panel would cost tens of milliseconds each, every epoch). Returns the lines."""
    (low, high), (first, last) = y_range, (epochs[0], epochs[-1])
    cols, gap_x, gap_y = 1 + max(c for _, c, _ in panels), 0.1, 0.42
    occupied = {(r, c) for r, c, _ in panels}

    def x(epoch, col):  # an epoch's position in a panel of the given column
        return col * (1 + gap_x) + ((epoch - first) / (last - first) if last > first else 0.5)

    def y(value, row):
        return -row * (1 + gap_y) + (value - low) / (high - low)

    x_ticks = [t for t in MaxNLocator(nbins=4, integer=True).tick_values(first, last) if first <= t <= last]
    y_ticks = [t for t in MaxNLocator(nbins=2).tick_values(low, high) if low <= t <= high]
    frames, grid = [], []
    for edge, (row, col, title) in enumerate(panels):
        x0, y0 = x(first, col) - (0 if last > first else 0.5), y(low, row)
        frames.append([(x0, y0), (x0 + 1, y0), (x0 + 1, y0 + 1), (x0, y0 + 1), (x0, y0)])
        grid += [[(x(t, col), y0), (x(t, col), y0 + 1)] for t in x_ticks]
        grid += [[(x0, y(t, row)), (x0 + 1, y(t, row))] for t in y_ticks]
        ax.text(x0 + 0.5, y0 + 1.04, title, ha="center", va="bottom", fontsize=LABEL, gid="edge title")
        if (row, col - 1) not in occupied:
            for t in y_ticks:
                ax.text(x0 - 0.03, y(t, row), f"{t:g}", ha="right", va="center", fontsize=TICK)
        if not any((r, col) in occupied for r in range(row + 1, row + 99)):
            for t in x_ticks:
                ax.text(x(t, col), y0 - 0.04, f"{t:g}", ha="center", va="top", fontsize=TICK)
    ax.add_collection(LineCollection(grid, colors="#e6e6e6", linewidths=0.6, zorder=0))
    ax.add_collection(LineCollection(frames, colors="#444444", linewidths=0.8, zorder=3))
    lines = []
    for k in range(len(weights[0][0])):
        name, xs, ys = _op_name(op_names, k), [], []
        for edge, (row, col, _) in enumerate(panels):  # the panels' curves joined by NaN gaps
            xs += [x(e, col) for e in epochs] + [math.nan]
            ys += [y(w[edge][k], row) if _finite(w[edge][k]) else math.nan for w in weights] + [math.nan]
        line, = ax.plot(xs, ys, color=op_colour(name), linestyle=":" if name == "none" else "-", linewidth=1.3,
                        label=name, zorder=2, **marks)
        lines.append(line)
    rows = 1 + max(r for r, _, _ in panels)
    ax.set_xlim(-0.02, cols * (1 + gap_x) - gap_x + 0.02)
    ax.set_ylim(-(rows - 1) * (1 + gap_y) - 0.02, 1.02)
    ax.set_axis_off()
    return lines


def op_weights_figure(history: list[dict], op_names=None, space=None):
    """Each edge's relaxed op weights over epochs: a block of panels per cell type (a row per node, a panel per
    input), one legend, one y range for all (0 to 1, widened where a relaxation's weights leave it)."""
    epochs = [r["epoch"] for r in history]
    cells = history[-1]["op_weights"]
    layouts = {cell: edge_panels(space, len(rows)) for cell, rows in cells.items()}
    shapes = {cell: (1 + max(r for r, _, _ in p), 1 + max(c for _, c, _ in p)) for cell, p in layouts.items()}
    values = [v for r in history for rows in r["op_weights"].values() for row in rows for v in row if _finite(v)]
    low, high = min([0.0, *values]), max([1.0, *values])
    gap, left, right, top, bottom = 0.55, 0.55, 0.25, 1.25, 0.05  # inches
    rows = max(r for r, _ in shapes.values())
    width = left + right + sum(PANEL_W * c for _, c in shapes.values()) + gap * (len(cells) - 1)
    height = top + bottom + PANEL_H * rows
    fig = new_figure(figsize=(width, height), dpi=DPI)
    marks = {"marker": "o", "markersize": 2.2} if len(epochs) <= MARKERS_UP_TO else {}
    x = left
    for cell, panels in layouts.items():
        block_w, block_h = PANEL_W * shapes[cell][1], PANEL_H * shapes[cell][0]
        ax = fig.add_axes((x / width, 1 - (top + block_h - 0.42) / height, (block_w - 0.19) / width,
                           (block_h - 0.42) / height))
        lines = _block(ax, panels, [r["op_weights"][cell] for r in history], epochs, (low, high), op_names, marks)
        fig.text((x + 0.02) / width, 1 - (top - 0.38) / height, cell if cell.endswith("cell") else f"{cell} cell",
                 ha="left", va="bottom", fontsize=TITLE + 1, fontweight="bold")
        x += block_w + gap
    fig.legend(handles=lines, loc="upper center", ncol=max(1, min(len(lines), int(width / 1.55))), fontsize=LABEL,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.04 / height))
    fig.text(0.5, 1 - (top + PANEL_H * rows - 0.42 + 0.2) / height, "epoch", ha="center", va="top", fontsize=LABEL)
    return fig


# -- the run's plots -------------------------------------------------------------------------------------
def check_history(history) -> None:
    """Records as metrics.jsonl holds them: an integer epoch and, per cell type, one list of op weights per
    edge, the same shape in every record; anything else is one ``ConfigError``."""
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ConfigError("a search history is a list of metrics records (dicts)")
    last = history[-1].get("op_weights") if history else None
    for i, record in enumerate(history):
        weights = record.get("op_weights")
        if isinstance(record.get("epoch"), bool) or not isinstance(record.get("epoch"), int):
            raise ConfigError(f"metrics record {i + 1} has no integer 'epoch'")
        if (not isinstance(weights, dict) or not weights or not isinstance(last, dict)
                or [(c, [len(row) for row in rows]) for c, rows in weights.items() if isinstance(rows, list)]
                != [(c, [len(row) for row in rows]) for c, rows in last.items() if isinstance(rows, list)]
                or not all(isinstance(rows, list) and rows and all(
                    isinstance(row, list) and row and all(_finite(v) or v is None for v in row) for row in rows)
                    for rows in weights.values())):
            raise ConfigError(f"metrics record {i + 1}: 'op_weights' must map each cell type to one list of "
                              f"numbers per edge, the same shape in every record")


def search_figures(history: list[dict], op_names=None, *, space=None) -> dict:
    """{file name: Figure} of every plot the run's records allow."""
    check_history(history)
    if op_names is None and space is not None:
        op_names = space.ops
    figures = {"op_weights.png": op_weights_figure(history, op_names, space),
               "hessian_eigenvalue.png": eigenvalue_figure(history),
               "skip_count.png": skip_count_figure(history, space),
               "supernet.png": supernet_figure(history)}
    if all("sigma" in r for r in history):
        figures["distribution.png"] = distribution_figure(history, op_names)
    if all("ground_truth" in r for r in history):
        figures["ground_truth.png"] = ground_truth_figure(history)
    return figures


def plot_search(history: list[dict], out_dir: str | Path, op_names=None, *, space=None) -> list[Path]:
    """Write the run's plots into ``out_dir`` (each atomically) and, given the space, ``cell.png``: the
    drawing of the latest record's genotype. Returns the paths written."""
    out_dir = Path(out_dir)
    if not history:
        return []
    written = []
    for name, fig in search_figures(history, op_names, space=space).items():
        save_png(fig, out_dir / name, dpi=DPI)
        written.append(out_dir / name)
    if space is not None and history[-1].get("genotype"):
        draw_cells(space, history[-1]["genotype"], out_dir / "cell.png", dpi=DPI)
        written.append(out_dir / "cell.png")
    return written

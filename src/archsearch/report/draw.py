"""Drawings of a genotype's cells: one panel per cell type, nodes left to right, ops on the arrows.

The graph comes from ``space.cell_edges(genotype)``: {cell type: [(source, target, op), ...]}.
Input nodes (no incoming edge) stand in the first column as boxes; every other node gets its own
column in the order of the space's node names, the output (no outgoing edge) last. Edges that skip
columns bend, more the further they reach, so that they do not cross the straight ones. An edge's
op names it and gives its colour; ``none`` edges carry nothing and are left out unless
``show_none=True`` (then dashed and grey); ``concat`` edges (DARTS: node -> cell output) are thin
and unlabelled.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.patches import FancyArrowPatch

from archsearch.report.png import new_figure, save_png

#: a fixed colour per op name seen in the built-in spaces; other ops cycle through the palette
OP_COLOURS = {
    "skip_connect": "#2ca02c",
    "nor_conv_1x1": "#1f77b4",
    "nor_conv_3x3": "#0b3d91",
    "avg_pool_3x3": "#ff7f0e",
    "max_pool_3x3": "#d62728",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#0b3d91",
    "dil_conv_3x3": "#9467bd",
    "dil_conv_5x5": "#8c564b",
    "none": "#9a9a9a",
    "concat": "#555555",
}
_PALETTE = ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8", "#ffbb78"]


def op_colour(op: str) -> str:
    if op in OP_COLOURS:
        return OP_COLOURS[op]
    return _PALETTE[sum(map(ord, op)) % len(_PALETTE)]


def _node_order(edges) -> list[str]:
    nodes: list[str] = []
    for source, target, _ in edges:
        for node in (source, target):
            if node not in nodes:
                nodes.append(node)
    targets = {t for _, t, _ in edges}
    sources = {s for s, _, _ in edges}
    inputs = [n for n in nodes if n not in targets]
    outputs = [n for n in nodes if n not in sources and n in targets]
    middle = [n for n in nodes if n not in inputs and n not in outputs]
    middle.sort(key=lambda n: (0, int(n)) if n.isdigit() else (1, n))
    return inputs + middle + outputs


def _layout(edges) -> tuple[dict[str, tuple[float, float]], set[str]]:
    order = _node_order(edges)
    targets = {t for _, t, _ in edges}
    inputs = [n for n in order if n not in targets]
    positions = {}
    for i, node in enumerate(inputs):
        positions[node] = (0.0, 3.6 * ((len(inputs) - 1) / 2.0 - i))
    rest = [n for n in order if n not in positions]
    for column, node in enumerate(rest, start=1):
        # with several inputs the inner nodes zigzag, so that edges from the inputs fan out
        zigzag = 0.0 if len(inputs) < 2 or node == rest[-1] else (0.9 if column % 2 else -0.9)
        positions[node] = (1.8 * column, zigzag)
    return positions, set(inputs)


def draw_cell(ax, edges, title: str = "", show_none: bool = False) -> None:
    """Draw one cell's graph on a matplotlib axes."""
    positions, inputs = _layout(edges)
    xs = [p[0] for p in positions.values()]
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(-2.6, 2.6)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=12)
    order = list(positions)
    for source, target, op in edges:
        if op == "none" and not show_none:
            continue
        (x0, y0), (x1, y1) = positions[source], positions[target]
        span = abs(order.index(target) - order.index(source))
        # straight to the next column, bent (alternating sides) when an edge skips columns
        rad = 0.0 if span <= 1 or abs(y1 - y0) > 0.5 else (0.28 + 0.06 * span) * (1 if span % 2 else -1)
        if op == "concat":
            rad = 0.0
        colour = op_colour(op)
        arrow = FancyArrowPatch((x0, y0), (x1, y1), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                mutation_scale=14, color=colour, lw=0.8 if op == "concat" else 1.8,
                                linestyle="--" if op == "none" else "-", shrinkA=16, shrinkB=16, zorder=1)
        ax.add_patch(arrow)
        if op == "concat":
            continue
        # a point of the quadratic Bezier matplotlib draws for arc3 (control = mid + rad * (dy, -dx)),
        # past the middle so that labels of edges leaving one node do not sit on each other
        t = 0.5 if rad else 0.58
        cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
        mx = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t**2 * x1
        my = (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t**2 * y1
        ax.text(mx, my, op, fontsize=7.5, color=colour, ha="center", va="center", zorder=3,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})
    for node, (x, y) in positions.items():
        box = "round,pad=0.3" if node in inputs or not node.isdigit() else "circle,pad=0.3"
        ax.text(x, y, node, ha="center", va="center", fontsize=10, zorder=4,
                bbox={"boxstyle": box, "fc": "#e8eef7" if node in inputs else "#fdf6e3", "ec": "#333333"})


def draw_cells(space, genotype, path: str | Path, show_none: bool = False, dpi: int = 120):
    """Draw every cell type of ``genotype`` side by side and write a PNG to ``path`` atomically.

    Returns the figure's axes, one per cell type, in the order of ``space.cell_edges``.
    """
    fig = cells_figure(space, genotype, show_none)
    save_png(fig, path, dpi=dpi, bbox_inches="tight")
    return list(fig.axes)


def cells_figure(space, genotype, show_none: bool = False):
    """The figure ``draw_cells`` writes, for callers that render it elsewhere (into memory, say)."""
    cells = space.cell_edges(space.parse(genotype))
    widths = [max(len(_node_order(edges)), 2) for edges in cells.values()]
    fig = new_figure(figsize=(sum(1.9 * w for w in widths), 4.6))
    axes = fig.subplots(1, len(cells), gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, (cell_type, edges) in zip(axes[0], cells.items()):
        draw_cell(ax, edges, cell_type if cell_type.endswith("cell") else f"{cell_type} cell", show_none)
    text = textwrap.fill(f"{space.name}: {space.to_string(space.parse(genotype))}", width=40 * len(cells) + 60)
    fig.suptitle(text, fontsize=8)
    return fig

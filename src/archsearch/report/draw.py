"""Drawings of a genotype's cells: one panel per cell type, data flowing left to right, ops beside the arrows.

The graph comes from ``space.cell_edges(genotype)``: {cell type: [(source, target, op), ...]}.

- Nodes stand in layers, as graphviz's dot draws a DAG: the inputs (no incoming edge) in the first column, every
  other node one column right of its right-most source, the output (no outgoing edge) in the last. A column is
  ordered by the mean height of its nodes' sources, which avoids crossings. Every edge of the cell shapes the
  layout, ``none`` ones included, so that NAS-Bench-201's cell keeps its shape from one epoch to the next.
- An edge is straight where that passes no other node, else the arc that keeps clear of the nodes and crosses
  the fewest edges drawn before it.
- An op's name stands beside its arrow, never on it: each label tries points along its edge (the middle first),
  on either side, anchored so that the text touches the edge from that side, and takes the first that overlaps
  no node and no other label while covering the fewest points of any edge (sizes measured by the renderer).

``none`` edges carry nothing and are left out unless ``show_none=True`` (then dashed and grey, still
labelled); ``concat`` edges (DARTS: node -> cell output) are thin and unlabelled.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as CurvePath

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
    "sep_conv_7x7": "#08306b",
    "max_pool_5x5": "#b2182b",
    "max_pool_7x7": "#67001f",
    "conv_1x1": "#6baed6",
    "conv_3x3": "#3182bd",
    "conv_1x3_3x1": "#756bb1",
    "conv_1x7_7x1": "#54278f",
    "dilated_conv_3x3": "#c51b8a",
    "none": "#9a9a9a",
    "concat": "#555555",
    "tanh": "#9467bd",
    "relu": "#d62728",
    "sigmoid": "#1f77b4",
    "identity": "#2ca02c",
    "init": "#7f7f7f",
}
_PALETTE = ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8", "#ffbb78"]

DX, DY = 2.3, 1.45  #: distance between columns and between the nodes of a column (data units)
INCH = 0.78  #: inches per data unit
RADIUS, BOX = 0.27, (1.0, 0.46)  #: an inner node's circle, an input's or output's box (data units)
LABEL_SIZE, NODE_SIZE = 8.5, 10  #: font sizes (points)
_BENDS = (0.0, 0.22, -0.22, 0.36, -0.36, 0.5, -0.5, 0.65, -0.65)  #: arc3 curvatures an edge may take
#: where along its edge a label may stand (the middle first), and how far from it (data units)
_ALONG = (0.5, 0.44, 0.56, 0.38, 0.62, 0.32, 0.68, 0.26, 0.74, 0.2, 0.8, 0.15, 0.85)
_AWAY = (0.05, 0.2, 0.4)


def op_colour(op: str) -> str:
    if op in OP_COLOURS:
        return OP_COLOURS[op]
    return _PALETTE[sum(map(ord, op)) % len(_PALETTE)]


def _name_key(node: str):
    return (0, int(node), node) if node.isdigit() else (1, 0, node)


def _layout(edges) -> tuple[dict[str, tuple[float, float]], set[str]]:
    """Node positions (data units) and the set of the cell's end nodes (inputs and output, drawn as boxes)."""
    nodes = list(dict.fromkeys(n for s, t, _ in edges for n in (s, t)))
    sources = {n: [s for s, t, _ in edges if t == n] for n in nodes}
    inputs = [n for n in nodes if not sources[n]]
    outputs = {n for n in nodes if sources[n] and not any(s == n for s, _, _ in edges)}
    column = {n: 0 for n in inputs}
    for node in sorted((n for n in nodes if n not in column), key=_name_key):  # numbered nodes: sources first
        pending = [node]
        while pending:  # depth-first, for names that do not sort in the graph's order
            n = pending[-1]
            missing = [s for s in sources[n] if s not in column]
            if missing:
                pending.append(missing[0])
                continue
            column[n] = 1 + max(column[s] for s in sources[n])
            pending.pop()
    last = max(column.values())
    for node in outputs:
        column[node] = max(last, 1)
    positions: dict[str, tuple[float, float]] = {}
    for c in range(max(column.values()) + 1):
        members = [n for n in nodes if column[n] == c]
        if c:  # by the mean height of the sources, top first
            members.sort(key=lambda n: (-np.mean([positions[s][1] for s in sources[n]]), _name_key(n)))
        for i, node in enumerate(members):
            positions[node] = (c * DX, DY * ((len(members) - 1) / 2 - i))
    return positions, set(inputs) | outputs


def _curve(a, b, rad: float, n: int = 97) -> np.ndarray:
    """Points of the quadratic Bezier that matplotlib's ``arc3,rad`` draws from a to b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    control = (a + b) / 2 + rad * np.array([d[1], -d[0]])
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * control + t**2 * b


def _crossings(points: np.ndarray, others: list[np.ndarray]) -> int:
    """How many segments of other curves the middle of this one crosses (ends shared at nodes do not count)."""
    if not others:
        return 0
    p = points[12:-12:3]
    a, b = p[:-1][:, None], p[1:][:, None]
    q = np.concatenate([np.stack([o[12:-15:3], o[15:-12:3]], axis=1) for o in others])
    c, d = q[None, :, 0], q[None, :, 1]

    def side(u, v, w):
        (vx, vy), (wx, wy) = np.moveaxis(v - u, -1, 0), np.moveaxis(w - u, -1, 0)
        return np.sign(vx * wy - vy * wx)

    return int(((side(a, b, c) != side(a, b, d)) & (side(c, d, a) != side(c, d, b))).sum())


def _bend(ends: tuple[str, str], positions, drawn: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """The curvature (and its points) for the edge between the two ``ends``: clear of every other node first,
    then as few crossings as it can, then as straight as it can."""
    others = np.array([p for n, p in positions.items() if n not in ends] or np.zeros((0, 2)))
    best = None
    for rad in _BENDS:
        points = _curve(positions[ends[0]], positions[ends[1]], rad)
        distances = np.linalg.norm(points[:, None] - others[None], axis=2)
        near = int((distances.min(0) < 0.55).sum()) if len(others) else 0
        cost = (100 * near + 3 * _crossings(points, drawn) + abs(rad), rad, points)
        if best is None or cost[0] < best[0]:
            best = cost
    return best[1], best[2]


def _boxes_overlap(box, boxes: np.ndarray) -> np.ndarray:
    return (box[0] < boxes[:, 2]) & (boxes[:, 0] < box[2]) & (box[1] < boxes[:, 3]) & (boxes[:, 1] < box[3])


def _place_labels(ax, labels, node_boxes: np.ndarray, curves: list[np.ndarray], limits) -> None:
    """Move each label (text, curve) to the free spot beside its edge that covers fewest points of any edge."""
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    every_point = np.concatenate(curves) if curves else np.zeros((0, 2))
    placed = np.zeros((0, 4))
    margin = 0.03
    for text, points in labels:
        (x0, y0), (x1, y1) = to_data.transform(text.get_window_extent(renderer).get_points())
        width, height = abs(x1 - x0), abs(y1 - y0)  # measured once: the candidates only move the box
        best = None
        for rank, (away, t) in enumerate(itertools.product(_AWAY, _ALONG)):
            i = int(round(t * (len(points) - 1)))
            tangent = points[min(i + 1, len(points) - 1)] - points[max(i - 1, 0)]
            normal = np.array([-tangent[1], tangent[0]]) / (np.linalg.norm(tangent) or 1.0)
            for n in (normal, -normal):
                anchor = points[i] + away * n
                # aligned so that the text stands on the side of the edge the normal points to
                ha, left = ("left", 0.0) if n[0] > 0.35 else ("right", -width) if n[0] < -0.35 else ("center", -width / 2)
                va, low = ("bottom", 0.0) if n[1] > 0.35 else ("top", -height) if n[1] < -0.35 else ("center", -height / 2)
                box = np.array([anchor[0] + left - margin, anchor[1] + low - margin,
                                anchor[0] + left + width + margin, anchor[1] + low + height + margin])
                inside = ((every_point[:, 0] > box[0]) & (every_point[:, 0] < box[2])
                          & (every_point[:, 1] > box[1]) & (every_point[:, 1] < box[3])).sum()
                hard = (_boxes_overlap(box, node_boxes).sum() + _boxes_overlap(box, placed).sum()
                        + (box[0] < limits[0] or box[2] > limits[1] or box[1] < limits[2] or box[3] > limits[3]))
                cost = 1000 * hard + 10 * inside + 0.1 * rank
                if best is None or cost < best[0]:
                    best = (cost, anchor, ha, va, box)
        _, anchor, ha, va, box = best
        text.set_position(anchor)
        text.set_horizontalalignment(ha)
        text.set_verticalalignment(va)
        placed = np.vstack([placed, box])


def _node_patch(node: str, xy, boxed: bool, is_input: bool):
    colour = "#e8eef7" if is_input else "#fdf6e3"
    if boxed:
        w, h = BOX
        return FancyBboxPatch((xy[0] - w / 2, xy[1] - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.1",
                              fc=colour, ec="#333333", lw=1.0, zorder=4)
    return Circle(xy, RADIUS, fc=colour, ec="#333333", lw=1.0, zorder=4)


def _inside(points: np.ndarray, centre, boxed: bool) -> np.ndarray:
    """Which points lie within a node's circle or box (and a hair around it)."""
    d = np.abs(points - np.asarray(centre))
    if boxed:
        return (d[:, 0] <= BOX[0] / 2 + 0.03) & (d[:, 1] <= BOX[1] / 2 + 0.03)
    return np.hypot(d[:, 0], d[:, 1]) <= RADIUS + 0.03


def _plan(edges, show_none: bool) -> dict:
    """Where everything goes: node positions, each shown edge's curvature and points, the data limits."""
    positions, boxed = _layout(edges)
    shown = [e for e in edges if e[2] != "none" or show_none]
    # labelled edges first and the short ones first: they take the straight lines
    shown.sort(key=lambda e: (e[2] == "concat", abs(positions[e[1]][0] - positions[e[0]][0])))
    routes, curves = [], []
    for source, target, op in shown:
        rad, points = _bend((source, target), positions, curves)
        curves.append(points)
        routes.append((source, target, op, rad, points))
    pts = np.concatenate(curves + [np.array(list(positions.values()))])
    limits = (pts[:, 0].min() - 1.1, pts[:, 0].max() + 1.1, pts[:, 1].min() - 0.75, pts[:, 1].max() + 0.75)
    return {"positions": positions, "boxed": boxed, "routes": routes, "limits": limits}


def draw_cell(ax, edges, title: str = "", show_none: bool = False, plan: dict | None = None) -> None:
    """Draw one cell's graph on a matplotlib axes. Labels are placed for the axes' size: give it one data unit
    the same length in x and y, as ``draw_cells`` does (``plan["limits"]`` are the data limits it needs)."""
    plan = plan or _plan(edges, show_none)
    positions, boxed = plan["positions"], plan["boxed"]
    targets = {t for _, t, _ in edges}
    patches = {n: _node_patch(n, xy, n in boxed, n not in targets) for n, xy in positions.items()}
    labels = []
    for source, target, op, rad, points in plan["routes"]:
        colour = op_colour(op)
        # the curve from the rim of one node to the rim of the other (matplotlib's own clipping at patches
        # costs most of a drawing's time)
        outside = ~(_inside(points, positions[source], source in boxed)
                    | _inside(points, positions[target], target in boxed))
        ax.add_artist(FancyArrowPatch(path=CurvePath(points[outside]), arrowstyle="-|>", color=colour, shrinkA=0,
                                     shrinkB=1, mutation_scale=12 if op == "concat" else 14,
                                     lw=0.8 if op == "concat" else 1.8, linestyle="--" if op == "none" else "-",
                                     zorder=1))
        if op != "concat":
            labels.append((ax.text(0, 0, op, fontsize=LABEL_SIZE, color=colour, zorder=3,
                                   path_effects=[patheffects.withStroke(linewidth=3, foreground="white")]), points))
    for node, patch in patches.items():
        ax.add_artist(patch)  # not add_patch: the limits are set, and updating them costs
        ax.text(*positions[node], node, ha="center", va="center", fontsize=NODE_SIZE, zorder=5)
    limits = plan["limits"]
    ax.set_xlim(*limits[:2])
    ax.set_ylim(*limits[2:])
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=12, y=1.0)
    half = np.array([BOX[0] / 2, BOX[1] / 2])
    node_boxes = np.array([np.concatenate([np.subtract(xy, half if n in boxed else RADIUS),
                                           np.add(xy, half if n in boxed else RADIUS)]) for n, xy in positions.items()])
    _place_labels(ax, labels, node_boxes, [route[4] for route in plan["routes"]], limits)


def cells_figure(space, genotype, show_none: bool = False, dpi: int = 120):
    """The figure of every cell type of ``genotype`` side by side, and its axes (one per cell type)."""
    genotype = space.parse(genotype)
    cells = space.cell_edges(genotype)
    plans = {cell: _plan(edges, show_none) for cell, edges in cells.items()}
    sizes = [((x1 - x0) * INCH, (y1 - y0) * INCH) for x0, x1, y0, y1 in (p["limits"] for p in plans.values())]
    height = max(h for _, h in sizes)
    top, bottom, gap = 0.85, 0.1, 0.3
    fig_w, fig_h = sum(w for w, _ in sizes) + gap * (len(cells) + 1), height + top + bottom
    fig = new_figure(figsize=(fig_w, fig_h), dpi=dpi)
    axes, x = [], gap
    for (cell_type, edges), (w, h) in zip(cells.items(), sizes):
        # one data unit is INCH inches both ways: the label placement measures in data units
        ax = fig.add_axes((x / fig_w, (bottom + height - h) / fig_h, w / fig_w, h / fig_h))  # tops aligned
        draw_cell(ax, edges, cell_type if cell_type.endswith("cell") else f"{cell_type} cell", show_none,
                  plans[cell_type])
        axes.append(ax)
        x += w + gap
    text = textwrap.fill(f"{space.name}: {space.to_string(genotype)}", width=max(60, int(fig_w * 13)))
    fig.suptitle(text, fontsize=8, y=1 - 0.06 / fig_h, va="top")
    return fig, axes


def draw_cells(space, genotype, path: str | Path, show_none: bool = False, dpi: int = 120):
    """Draw every cell type of ``genotype`` side by side and write a PNG to ``path`` atomically.

    Returns the figure's axes, one per cell type, in the order of ``space.cell_edges``.
    """
    fig, axes = cells_figure(space, genotype, show_none, dpi)
    save_png(fig, path, dpi=dpi)
    return axes

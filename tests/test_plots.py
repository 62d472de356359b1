"""The search run's plots: read back from the matplotlib objects they are drawn with and from the files written."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.image import imread
from matplotlib.ticker import MaxNLocator

from archsearch.errors import ConfigError
from archsearch.report.plots import edge_panels, max_skips, plot_search, search_figures
from archsearch.spaces import get_space
from archsearch.spaces.darts_genotypes import DARTS_V2

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ARROW = "\u2190"


def synthetic_history(space, epochs: int, seed: int = 0, warmup: int = 0, scale: float = 1.0) -> list[dict]:
    """Records shaped as metrics.jsonl's: drifting softmax op weights (times ``scale``), the argmax genotype,
    losses and accuracies (no validation during ``warmup`` epochs: None, then NaN), an eigenvalue every 3rd
    epoch."""
    rng = np.random.default_rng(seed)
    shapes = space.arch_shapes()
    drift = {cell: rng.normal(0, 0.2, shape) for cell, shape in shapes.items()}
    history = []
    for epoch in range(1, epochs + 1):
        weights = {cell: torch.softmax(torch.tensor(drift[cell] * epoch), dim=-1) * scale for cell in shapes}
        genotype = space.genotype_from_weights(weights)
        history.append({
            "epoch": epoch, "genotype": space.to_string(genotype),
            "train_loss": 2.3 / epoch, "train_acc": 100 - 80 / epoch,
            "valid_loss": None if epoch <= warmup else 2.4 / epoch,
            "valid_acc": (None if epoch == 1 else math.nan) if epoch <= warmup else 100 - 85 / epoch,
            "op_weights": {cell: [[round(float(v), 6) for v in row] for row in w.tolist()] for cell, w in weights.items()},
            "skip_count": sum(op == "skip_connect" for _, _, op in next(iter(space.cell_edges(genotype).values()))),
            "hessian_max_eigenvalue": 0.5 * epoch if epoch % 3 == 0 else None,
        })
    return history


def nb201_labels() -> list[str]:
    # NAS-Bench-201's edge order (its arch strings): node 1 <- 0, node 2 <- 0, 1, node 3 <- 0, 1, 2
    return [f"{t} {ARROW} {s}" for t, s in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))]


def darts_labels() -> list[str]:
    # quark0/darts' alpha rows: node k (0..3) takes the two cell inputs c_{k-2}, c_{k-1}, then nodes 0..k-1
    return [f"{k} {ARROW} {name}" for k in range(4) for name in ["c_{k-2}", "c_{k-1}", *map(str, range(k))]]


def edge_titles(fig) -> list[list[str]]:
    return [[t.get_text() for t in ax.texts if t.get_gid() == "edge title"] for ax in fig.axes]


def test_edge_panels_are_titled_node_from_input():
    nb201, darts = get_space("nb201"), get_space("darts")
    assert [title for _, _, title in edge_panels(nb201, 6)] == nb201_labels()
    assert [title for _, _, title in edge_panels(darts, 14)] == darts_labels()
    # a row of panels per node, its inputs left to right
    assert [(r, c) for r, c, _ in edge_panels(nb201, 6)] == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
    # without the space's graph (or with a row count it does not describe): numbered edges
    assert [title for _, _, title in edge_panels(None, 3)] == ["edge 0", "edge 1", "edge 2"]
    assert [title for _, _, title in edge_panels(nb201, 5)] == [f"edge {i}" for i in range(5)]


def test_edge_titles_name_nodes_as_the_cell_drawing_does():
    """The rows DARTS_V2 keeps are titled with the (target, source) names of the drawing's edges."""
    darts = get_space("darts")
    titles = [title for _, _, title in edge_panels(darts, 14)]
    drawn = darts.cell_edges(DARTS_V2)
    for cell, kept in darts.selected_edges(DARTS_V2).items():
        edges = [e for e in drawn[cell] if e[2] != "concat"]
        assert [titles[row] for row, _ in kept] == [f"{t} {ARROW} {s}" for s, t, _ in edges]


@pytest.mark.parametrize("name, epochs, cells", [("nb201", 30, ["cell"]), ("darts", 50, ["normal cell", "reduce cell"])])
def test_op_weights_one_block_per_cell_type_one_legend(name, epochs, cells):
    space = get_space(name)
    history = synthetic_history(space, epochs)
    fig = search_figures(history, space=space)["op_weights.png"]
    expected = nb201_labels() if name == "nb201" else darts_labels()
    assert edge_titles(fig) == [expected] * len(cells)
    assert [t.get_text() for t in fig.texts if t.get_fontweight() == "bold"] == cells
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(space.ops)
    for ax in fig.axes:
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == list(space.ops)
        cell = ("normal", "reduce")[fig.axes.index(ax)] if name == "darts" else "cell"
        rows = [r for r, _, _ in edge_panels(space, len(expected))]
        offsets = {}
        for k, line in enumerate(lines):  # each op's line: its weight on every edge, panels split by NaN
            panels = np.split(np.asarray(line.get_ydata(), float), len(expected))
            for edge, panel in enumerate(panels):
                assert np.isnan(panel[-1])
                recorded = np.array([r["op_weights"][cell][edge][k] for r in history])
                shift = panel[:-1] - recorded  # weights in [0, 1] are drawn at scale 1, shifted by the panel's row
                assert np.allclose(shift, shift[0])
                offsets.setdefault(rows[edge], set()).add(round(float(shift[0]), 9))
        assert all(len(shifts) == 1 for shifts in offsets.values()) and len(offsets) == len(set(rows))
        ticks = [t.get_text() for t in ax.texts if t.get_gid() != "edge title"]
        assert {"0", "0.5", "1"} <= set(ticks)  # softmax weights: y from 0 to 1
        epoch_ticks = [t for t in ticks if t not in {"0", "0.5", "1"}]
        assert epoch_ticks and all(t.isdigit() and 1 <= int(t) <= epochs for t in epoch_ticks)


def test_op_weights_range_follows_weights_beyond_one():
    space = get_space("nb201")
    history = synthetic_history(space, 4, scale=3.0)  # e.g. XNAS' experts weights are not probabilities
    ax = search_figures(history)["op_weights.png"].axes[0]
    low, high = ax.get_ylim()
    for line in ax.get_lines():
        ys = np.asarray(line.get_ydata(), float)
        assert np.nanmin(ys) >= low and np.nanmax(ys) <= high  # nothing clipped
    assert "3" in {t.get_text() for t in ax.texts}


def test_markers_only_for_short_runs():
    space = get_space("nb201")
    for epochs, marked in ((30, True), (31, False)):
        fig = search_figures(synthetic_history(space, epochs))["supernet.png"]
        assert all((line.get_marker() not in (None, "None", "")) == marked for ax in fig.axes for line in ax.get_lines())


def test_supernet_curves_are_the_records():
    space = get_space("nb201")
    history = synthetic_history(space, 7, warmup=2)
    fig = search_figures(history)["supernet.png"]
    loss_ax, acc_ax = fig.axes
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"train", "valid"}
        for split in ("train", "valid"):
            kept = [r for r in history if r[f"{split}_{metric}"] is not None and not math.isnan(r[f"{split}_{metric}"])]
            assert list(lines[split].get_xdata()) == [r["epoch"] for r in kept]
            assert list(lines[split].get_ydata()) == [r[f"{split}_{metric}"] for r in kept]
    assert len(lines["valid"].get_xdata()) == 5  # the two warm-up epochs have no validation


def test_every_plot_has_integer_epoch_ticks():
    space = get_space("nb201")
    history = synthetic_history(space, 7)
    for name, fig in search_figures(history, space=space).items():
        if name == "op_weights.png":
            continue  # drawn panel by panel, checked above
        for ax in fig.axes:
            assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
            low, high = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)


@pytest.mark.parametrize("name, most", [("nb201", 6), ("darts", 8)])
def test_skip_count_axis_runs_from_zero_to_every_kept_edge(name, most):
    # NAS-Bench-201 keeps all 6 edges of its cell; a DARTS normal cell keeps 2 inputs for each of its 4 nodes
    space = get_space(name)
    history = synthetic_history(space, 5)
    assert max_skips(history, space) == most
    ax = search_figures(history, space=space)["skip_count.png"].axes[0]
    low, high = ax.get_ylim()
    assert low == 0 and most <= high < most + 1
    assert all(float(t).is_integer() for t in ax.get_yticks())


@pytest.mark.parametrize("values", [[5.0, 9.0], [-2.0, -1.0], [None, None]])
def test_eigenvalue_axis_includes_zero(values):
    history = synthetic_history(get_space("nb201"), 2)
    for record, value in zip(history, values):
        record["hessian_max_eigenvalue"] = value
    ax = search_figures(history)["hessian_eigenvalue.png"].axes[0]
    low, high = ax.get_ylim()
    assert low <= 0 <= high
    shown = [v for v in values if v is not None]
    assert all(low <= v <= high for v in shown)
    assert list(ax.get_lines()[0].get_ydata()) == shown


def test_plot_search_writes_valid_pngs(tmp_path):
    space = get_space("nb201")
    history = synthetic_history(space, 3)
    for record in history:  # as BaLeNAS and NAS-Bench-201 runs record them
        record.update(mu=record["op_weights"], sigma=record["op_weights"], arch_entropy=1.0, arch_entropy_max=2.0,
                      ground_truth=space.ground_truth(space.parse(record["genotype"])))
    written = plot_search(history, tmp_path, space=space)
    assert [p.name for p in written] == ["op_weights.png", "hessian_eigenvalue.png", "skip_count.png",
                                         "supernet.png", "distribution.png", "ground_truth.png", "cell.png"]
    for path in written:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0  # something is drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporary files
    # without the space: the same plots but the cell drawing, in the old call form
    assert [p.name for p in plot_search(history, tmp_path / "bare", space.ops)] == [p.name for p in written[:-1]]
    assert plot_search([], tmp_path / "none") == []


def test_cell_png_draws_the_latest_genotype(tmp_path):
    space = get_space("darts")
    history = synthetic_history(space, 2)
    history[-1]["genotype"] = space.to_string(DARTS_V2)
    plot_search(history, tmp_path, space=space)
    from archsearch.report.draw import draw_cells

    draw_cells(space, DARTS_V2, tmp_path / "direct.png", dpi=100)
    assert imread(tmp_path / "cell.png").shape == imread(tmp_path / "direct.png").shape


@pytest.mark.parametrize("history", [
    "not a list", [{"epoch": 1}], [{"epoch": "1", "op_weights": {"cell": [[1.0]]}}],
    [{"epoch": 1, "op_weights": {"cell": [[0.5, 0.5]]}}, {"epoch": 2, "op_weights": {"cell": [[1.0]]}}],
    [{"epoch": 1, "op_weights": {"cell": [["x"]]}}], [{"epoch": 1, "op_weights": {"cell": []}}],
])
def test_malformed_history_is_one_clear_error(history, tmp_path):
    with pytest.raises(ConfigError, match="history|metrics record"):
        plot_search(history, tmp_path)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(epochs=st.integers(1, 40), n_edges=st.integers(1, 9), n_ops=st.integers(1, 6), first=st.integers(0, 500),
       data=st.data())
def test_generated_histories_plot_within_their_axes(epochs, n_edges, n_ops, first, data):
    finite = st.floats(-5, 5, allow_nan=False)
    maybe = st.one_of(st.none(), st.just(math.nan), finite)
    history = [{"epoch": first + i,
                "op_weights": {"cell": [data.draw(st.lists(finite, min_size=n_ops, max_size=n_ops))
                                        for _ in range(n_edges)]},
                "genotype": None, "train_loss": data.draw(maybe), "valid_loss": data.draw(maybe),
                "train_acc": data.draw(maybe), "valid_acc": data.draw(maybe),
                "skip_count": data.draw(st.integers(0, n_edges)), "hessian_max_eigenvalue": data.draw(maybe)}
               for i in range(epochs)]
    figures = search_figures(history)
    ax = figures["op_weights.png"].axes[0]
    low, high = ax.get_ylim()
    for line in ax.get_lines():
        ys = np.asarray(line.get_ydata(), float)
        assert np.all(np.isnan(ys) | ((ys >= low) & (ys <= high)))
    assert len(edge_titles(figures["op_weights.png"])[0]) == n_edges
    skip = figures["skip_count.png"].axes[0]
    assert skip.get_ylim()[0] == 0 and skip.get_ylim()[1] >= max(r["skip_count"] for r in history)
    eig = figures["hessian_eigenvalue.png"].axes[0]
    assert eig.get_ylim()[0] <= 0 <= eig.get_ylim()[1]
    assert all(float(t).is_integer() for t in skip.get_yticks())

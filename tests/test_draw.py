"""Cell drawings: a readable PNG with one panel per cell type."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
from matplotlib.patches import FancyArrowPatch

from archsearch.report import draw_cells
from archsearch.spaces import get_space
from archsearch.spaces.darts_genotypes import DARTS_V2, PUBLISHED

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_nb201_one_panel(tmp_path):
    space = get_space("nb201")
    path = tmp_path / "cell.png"
    axes = draw_cells(space, "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", path)
    assert len(axes) == 1
    width, height = png_size(path)
    assert 300 < width < 4000 and 200 < height < 2000
    labels = [t.get_text() for t in axes[0].texts]
    # the four non-none ops are labelled once each; none edges are left out; four nodes are drawn
    assert sorted(label for label in labels if "_" in label) == sorted(
        ["nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_1x1"])
    assert {"0", "1", "2", "3"} <= set(labels)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_nb201_show_none_draws_dashed_edges(tmp_path):
    space = get_space("nb201")
    axes = draw_cells(space, "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|", tmp_path / "c.png",
                      show_none=True)
    dashed = [p for p in axes[0].patches if p.get_linestyle() not in ("-", "solid")]
    assert len(dashed) == 5


def test_darts_normal_and_reduce_side_by_side(tmp_path):
    space = get_space("darts")
    path = tmp_path / "darts.png"
    axes = draw_cells(space, DARTS_V2, path)
    assert [ax.get_title() for ax in axes] == ["normal cell", "reduce cell"]
    width, height = png_size(path)
    assert width > height  # side by side
    for ax, cell in zip(axes, ("normal", "reduce")):
        op_labels = [t.get_text() for t in ax.texts if "_" in t.get_text() and not t.get_text().startswith("c_")]
        assert len(op_labels) == len(DARTS_V2.cell(cell)) == 8


# -- legibility: labels beside the arrows, never on each other -----------------------------------------------
def _label_boxes(ax):
    """Window extents of the op labels (every text but the node names) and of the nodes' circles and boxes."""
    renderer = ax.figure.canvas.get_renderer()
    nodes = [p for p in ax.patches if not isinstance(p, FancyArrowPatch)]
    node_names = {t.get_text() for t in ax.texts if t.get_zorder() > 4}
    labels = [t for t in ax.texts if t.get_text() not in node_names]
    return ([t.get_window_extent(renderer) for t in labels], [p.get_window_extent(renderer) for p in nodes],
            [t.get_text() for t in labels])


def _assert_legible(axes, check_arrows: bool):
    for ax in axes:
        labels, nodes, names = _label_boxes(ax)
        fig_box = ax.figure.bbox
        for (a, name_a), (b, name_b) in itertools.combinations(zip(labels, names), 2):
            assert not a.overlaps(b), f"{name_a} and {name_b} overlap"
        for box, name in zip(labels, names):
            assert not any(box.overlaps(node) for node in nodes), f"{name} sits on a node"
            assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1 and fig_box.y0 <= box.y0 and box.y1 <= fig_box.y1
        if check_arrows:  # no arrow runs through a label (its box shrunk by 2 px for the antialiased rims)
            arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
            points = np.concatenate([ax.transData.transform(p.get_path().vertices) for p in arrows])
            for box, name in zip(labels, names):
                inside = ((points[:, 0] > box.x0 + 2) & (points[:, 0] < box.x1 - 2)
                          & (points[:, 1] > box.y0 + 2) & (points[:, 1] < box.y1 - 2))
                assert not inside.any(), f"an arrow runs through the label {name}"


def test_darts_v2_and_nb201_labels_are_legible(tmp_path):
    axes = draw_cells(get_space("darts"), DARTS_V2, tmp_path / "darts.png")
    _assert_legible(axes, check_arrows=True)
    nb201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    _assert_legible(draw_cells(get_space("nb201"), nb201, tmp_path / "nb201.png"), check_arrows=True)
    _assert_legible(draw_cells(get_space("nb201"), nb201.replace("skip_connect", "none"), tmp_path / "n.png",
                               show_none=True), check_arrows=True)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_darts_cells_never_stack_labels(name, tmp_path):
    _assert_legible(draw_cells(get_space("darts"), PUBLISHED[name], tmp_path / "c.png"), check_arrows=False)


def test_sampled_cells_never_stack_labels(tmp_path):
    for space_name, show_none in (("nb201", True), ("nb201", False), ("darts", False)):
        space = get_space(space_name)
        for seed in range(4):
            axes = draw_cells(space, space.sample(seed), tmp_path / "c.png", show_none=show_none, dpi=80)
            _assert_legible(axes, check_arrows=False)

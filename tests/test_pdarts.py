"""P-DARTS: stages grow the depth and shrink the candidate sets, skip dropout, at most M skips."""

from __future__ import annotations

import json
import math

import pytest
import torch

from archsearch.data import load_dataset
from archsearch.errors import ConfigError
from archsearch.search.hooks.skip_dropout import skip_dropout_rate
from archsearch.search.drivers.progressive import prune_op_subsets
from archsearch.search.selectors.max_skips import limit_skips
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.spaces import get_space
from archsearch.spaces.darts import OPS
from archsearch.spaces.partial import SkipDropout
from archsearch.utils.checkpoint import CheckpointStore

SKIP, SEP3, SEP5, DIL3 = (OPS.index(op) for op in ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3"))


def _edge(row_weights: dict[int, float]) -> torch.Tensor:
    row = torch.full((len(OPS),), 0.01)
    for column, value in row_weights.items():
        row[column] = value
    return row


def test_at_most_two_skips_in_the_normal_cell():
    """Rows: node 0 <- {0: 0, 1: 1}; node 1 <- {2, 3, 4}; node 2 <- {5..8}; node 3 <- {9..13}.
    Unconstrained, the normal cell keeps 4 skips: rows 0 (0.9), 1 (0.5), 3 (0.7), 9 (0.4).
    By hand, P-DARTS zeroes the weakest selected skip and reselects until 2 remain:
    1st: row 9 (0.4) -> its next op is sep_conv_5x5 0.05, weaker than row 11's dil_conv_3x3 0.3, so
         node 3 now takes rows 10 and 11: still skips at rows 0, 1, 3 (3 > 2);
    2nd: row 1 (0.5) -> row 1 keeps its node's place (node 0 has only 2 inputs) with sep_conv_3x3 0.3.
    Left: skips at rows 0 and 3."""
    weights = {cell: torch.stack([_edge({SEP3: 0.2})] * 14) for cell in ("normal", "reduce")}
    n = weights["normal"]
    n[0] = _edge({SKIP: 0.9, SEP3: 0.05})
    n[1] = _edge({SKIP: 0.5, SEP3: 0.3})
    n[2] = _edge({SEP5: 0.6})
    n[3] = _edge({SKIP: 0.7, SEP3: 0.1})
    n[4] = _edge({SEP3: 0.1})
    n[5], n[6], n[7], n[8] = _edge({SEP3: 0.8}), _edge({SEP5: 0.75}), _edge({SEP3: 0.1}), _edge({SEP3: 0.1})
    n[9] = _edge({SKIP: 0.4, SEP5: 0.05})
    n[10] = _edge({SEP3: 0.6})
    n[11] = _edge({DIL3: 0.3})
    n[12], n[13] = _edge({SEP3: 0.1}), _edge({SEP3: 0.1})
    space = get_space("darts")
    free = space.genotype_from_weights(weights)
    assert [op for op, _ in free.normal].count("skip_connect") == 4
    limited = limit_skips(space, weights, max_skips=2)
    expected_normal = (("skip_connect", 0), ("sep_conv_3x3", 1),  # node 0
                       ("sep_conv_5x5", 0), ("skip_connect", 1),  # node 1: rows 2, 3
                       ("sep_conv_3x3", 0), ("sep_conv_5x5", 1),  # node 2: rows 5, 6
                       ("sep_conv_3x3", 1), ("dil_conv_3x3", 2))  # node 3: rows 10, 11
    assert limited.canonical().normal == type(free)(expected_normal, (2, 3, 4, 5), free.reduce,
                                                    (2, 3, 4, 5)).canonical().normal
    assert limited.reduce == free.reduce  # the reduction cell is left alone
    assert limit_skips(space, weights, max_skips=4) == free


def test_pruning_keeps_the_strongest_ops_of_each_edge_none_included():
    weights = {"normal": torch.zeros(14, 8), "reduce": torch.zeros(14, 8)}
    weights["normal"][0] = torch.tensor([0.30, 0.01, 0.02, 0.25, 0.20, 0.10, 0.07, 0.05])
    subsets = {cell: [list(OPS)] * 14 for cell in weights}
    kept = prune_op_subsets(weights, subsets, 5, OPS)
    assert kept["normal"][0] == ["none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3"]
    # a second pruning only sees the ops an edge still holds
    again = prune_op_subsets(weights, kept, 3, OPS)
    assert again["normal"][0] == ["none", "skip_connect", "sep_conv_3x3"]
    # equal weights: the lower columns go first, as np.argmin in the reference
    assert kept["reduce"][0] == list(OPS[3:])


def test_skip_dropout_schedule_is_the_reference_formula():
    # pdarts train_search.py, stage 2 (p0 = 0.4), 25 epochs, 10 of weights only, scale factor 0.2
    assert skip_dropout_rate(0.4, 0, 25, 10, 0.2) == pytest.approx(0.4 * 24 / 25)
    assert skip_dropout_rate(0.4, 9, 25, 10, 0.2) == pytest.approx(0.4 * 15 / 25)
    assert skip_dropout_rate(0.4, 10, 25, 10, 0.2) == pytest.approx(0.4)
    assert skip_dropout_rate(0.4, 15, 25, 10, 0.2) == pytest.approx(0.4 * math.exp(-1.0))


def test_skip_dropout_follows_each_identity_skip_only():
    net = get_space("darts").supernet(num_classes=3, C=4, layers=5, in_channels=1, skip_dropout=0.4)
    drops = [m for m in net.modules() if isinstance(m, SkipDropout)]
    # 3 normal cells x 14 edges + 2 reduction cells x 6 stride-1 edges (the 8 from the cell inputs stride)
    assert len(drops) == 3 * 14 + 2 * 6 and all(m.p == 0.4 for m in drops)
    plain = get_space("darts").supernet(num_classes=3, C=4, layers=5, in_channels=1)
    assert not any(isinstance(m, SkipDropout) for m in plain.modules())


def test_preset_has_the_papers_values():
    c = resolve_config("pdarts")
    assert (c.space, c.layers, c.epochs, c.arch_warmup_epochs, c.batch_size) == ("darts", 5, 25, 10, 96)
    assert (c.arch_lr, c.w_lr, c.w_lr_min, c.selector_options) == (6e-4, 0.025, 0.0, {"max_skips": 2})
    assert c.driver_options["num_ops"] == [8, 5, 3] and c.driver_options["skip_dropout"] == [0.0, 0.4, 0.7]


def test_bad_setups_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="DARTS space"):
        run_search(resolve_config("pdarts", overrides={"space": "nb201"}), tmp_path / "a", quiet=True)
    with pytest.raises(ConfigError, match="one value per stage"):
        run_search(resolve_config("pdarts", overrides={"driver_options": {"num_ops": [8, 5]}}), tmp_path / "b")


def test_stages_grow_depth_and_shrink_candidates(tmp_path):
    data = load_dataset("digits", quiet=True).limited(64, 16, 0)  # one search batch per stage
    config = resolve_config("pdarts", overrides={"C": 4, "epochs": 1, "batch_size": 32, "arch_warmup_epochs": 0,
                                                 "hessian_every": 0})
    summary = run_search(config, tmp_path, quiet=True, dataset=data)
    columns, depths, probs = [], [], []
    for stage in (1, 2, 3):
        state = CheckpointStore(tmp_path / f"stage{stage}").load()[0]["model"]
        columns.append(state["alphas.normal"].shape[1])
        depths.append(len({key.split(".")[1] for key in state if key.startswith("cells.")}))
        probs.append({cell: torch.softmax(state[f"alphas.{cell}"], dim=-1) for cell in ("normal", "reduce")})
    assert depths == [5, 11, 17]
    assert columns == [8, 5, 3]
    record = json.loads((tmp_path / "stages.json").read_text())
    assert [len(r["op_subsets"]["normal"][0]) for r in record] == [8, 5, 3]
    for before, after, p in zip(record, record[1:], probs):
        for cell in ("normal", "reduce"):
            for row, (held, kept) in enumerate(zip(before["op_subsets"][cell], after["op_subsets"][cell])):
                # the kept ops are the strongest of those held, by the previous stage's softmax(alpha)
                order = sorted(range(len(held)), key=lambda k: -float(p[cell][row, k]))
                assert set(kept) == {held[k] for k in order[:len(kept)]}
    genotype = get_space("darts").parse(summary["genotype"])
    assert [op for op, _ in genotype.normal].count("skip_connect") <= 2
    assert summary["genotype"] == record[-1]["genotype"] and summary["epochs_run"] == 3
    held = record[-1]["op_subsets"]
    for cell in ("normal", "reduce"):  # the final ops come from the last stage's candidates, never none
        for i, (op, source) in enumerate(genotype.cell(cell)):
            row = [(n, s) for n in range(4) for s in range(n + 2)].index((i // 2, source))
            assert op != "none" and op in held[cell][row]

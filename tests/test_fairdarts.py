"""FairDARTS: sigmoid relaxation, zero-one loss, threshold selection and invalid-cell detection;
the fairdarts, fairdarts-dscd and xnas presets end to end."""

from __future__ import annotations

import json

import pytest
import torch

from archsearch.relax import build_relaxation
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.search.selectors.threshold import cell_topology, reaches_output
from archsearch.spaces import get_space
from archsearch.utils.checkpoint import CheckpointStore
from archsearch.utils.io import read_jsonl

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3, "hessian_every": 0, "data": "digits"}


def test_sigmoid_weights_are_independent_and_the_zero_one_loss_is_the_formula():
    relax = build_relaxation("sigmoid")
    alpha = torch.tensor([[2.0, 3.0, -1.0, 0.0, 1.5]], requires_grad=True)
    w = relax(alpha)
    assert ((w > 0.8).sum() == 3)  # several ops active on one edge
    torch.testing.assert_close(w, 1 / (1 + torch.exp(-alpha)))
    loss = relax.extra_loss({"a": alpha, "b": torch.zeros(2, 5)})
    values = torch.cat([torch.sigmoid(alpha.detach()).flatten(), torch.full((10,), 0.5)])
    expected = -10.0 * ((values - 0.5) ** 2).mean()  # w01 = 10
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()  # descent moves every weight away from 0.5: the gradient has the sign of -(w - 0.5)
    moving = alpha.detach() != 0
    assert torch.all(torch.sign(-alpha.grad[moving]) == torch.sign(w.detach()[moving] - 0.5))


def test_cell_paths_on_both_spaces():
    nb201 = cell_topology(get_space("nb201"))  # rows: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    assert reaches_output([3], nb201)  # 3<-0 alone connects
    assert reaches_output([0, 2, 5], nb201)  # 0 -> 1 -> 2 -> 3
    assert not reaches_output([0, 5], nb201)  # node 2 is never reached, so 3<-2 carries nothing
    assert not reaches_output([0, 1, 2], nb201)  # nothing enters node 3
    darts = cell_topology(get_space("darts"))  # rows: node0<-{0,1}, node1<-{0,1,2}, ...
    assert reaches_output([0], darts)
    assert not reaches_output([4], darts)  # node 1 <- node 0 while node 0 has no input edge


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits", quiet=True)


def test_threshold_selector_reports_a_collapsed_cell_instead_of_a_genotype(tmp_path, digits, caplog):
    config = resolve_config("fairdarts", overrides={**TINY, "hessian_every": 0})
    search = DifferentiableSearch(config, tmp_path, quiet=True, dataset=digits)
    alpha = search.model.alphas["cell"]
    conv = search.space.ops.index("nor_conv_3x3")
    with torch.no_grad():
        alpha.fill_(-3.0)
        alpha[[0, 2, 5], conv] = 3.0  # 0 -> 1 -> 2 -> 3 through kept convolutions
    genotype = search.selector.select(search.view())
    assert search.space.to_string(genotype) == "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert search.selector.invalid_reason(search.view(), genotype) is None
    assert search.summary(genotype)["genotype"] == search.space.to_string(genotype)
    with torch.no_grad():
        alpha[2, conv] = 0.0  # sigmoid 0.5 < 0.8: node 2 is cut off, so is the output
    with caplog.at_level("WARNING", logger="archsearch"):
        record = search.selector.record(search.view())
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "is invalid" in caplog.records[0].getMessage()
    assert record["threshold_valid"] is False
    summary = search.summary(search.selector.select(search.view()))
    assert summary["genotype"] is None and "threshold 0.8" in summary["invalid_architecture"]
    assert "ground_truth" not in summary


def test_threshold_selector_counts_the_darts_edges_it_drops(tmp_path, digits):
    """A DARTS genotype keeps two inputs per node whatever the threshold, so the record says how many of
    the cell's 14 edges hold no op above it: here 14 minus the 3 edges set above."""
    config = resolve_config("fairdarts", overrides={**TINY, "space": "darts", "layers": 2, "N": 5})
    search = DifferentiableSearch(config, tmp_path, quiet=True, dataset=digits)
    conv = search.space.ops.index("sep_conv_3x3")
    with torch.no_grad():
        for alpha in search.model.alphas.values():
            alpha.fill_(-3.0)
            alpha[[0, 1, 4], conv] = 3.0  # node 2 from both inputs, node 3 from node 2
    record = search.selector.record(search.view())
    assert record["threshold_dropped"] == {"normal": 11, "reduce": 11}


@pytest.mark.parametrize("method", ["fairdarts", "fairdarts-dscd", "xnas"])
def test_presets_run_end_to_end(tmp_path, digits, method, caplog):
    config = resolve_config(method, overrides=TINY)
    with caplog.at_level("WARNING", logger="archsearch"):
        summary = run_search(config, tmp_path, quiet=True, dataset=digits)
    # the thresholded cell is invalid after one epoch: one warning line per epoch (none for XNAS)
    assert [r.getMessage().startswith("archsearch: warning:") for r in caplog.records] == \
        ([] if method == "xnas" else [True])
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(records) == 1
    if method == "xnas":
        alive = records[0]["alive_ops"]["cell"]
        assert alive == [1] * 6  # at t = T only each edge's leader is left
        assert summary["genotype"] is not None
        state = CheckpointStore(tmp_path).load()[0]["a_optimizer"]["state"]
        assert state[0]["alive"].sum() == 6  # the checkpoint remembers the removals
    else:
        assert "threshold_valid" in records[0] and "zero_one_loss" in records[0]
        # at the start every sigmoid weight is 0.5 < 0.8: after one epoch the cell is still invalid
        assert records[0]["threshold_valid"] is False and summary["genotype"] is None
        saved = json.loads((tmp_path / "genotype.json").read_text())
        assert saved["invalid_architecture"] and saved["rejected_genotype"]
    if method == "fairdarts-dscd":
        assert records[0]["dscd"]["local"] + records[0]["dscd"]["global"] > 0

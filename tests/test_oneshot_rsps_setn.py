"""RSPS and SETN: uniformly drawn paths for the weights, shared-weight accuracy for the ranking.

Oracles: xautodl's ``forward_dynamic`` (``search_cells.py:156-166``) written out on the supernet's own op
modules; the uniform law of ``random.choice`` per edge (a chi-square test, seeded); DARTS' first-order
gradient of L_val through softmax(alpha) computed on an independent copy of the supernet; the top-K
rule of ``return_topK`` as a brute-force sort of the 15,625 log-probabilities.
"""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from scipy.stats import chi2

from archsearch.data import load_dataset
from archsearch.errors import ConfigError
from archsearch.groundtruth.nb201_arch import EDGES, NUM_NODES
from archsearch.relax import build_relaxation
from archsearch.relax.softmax import Softmax
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.selectors.shared_weights import (SharedWeightSelector, fixed_path, path_weights,
                                                         shared_weight_accuracy, top_genotypes)
from archsearch.spaces import get_space
from archsearch.spaces.nb201_supernet import SearchCell
from archsearch.spaces.supernet import MixedOp

from cli_contract import run_cli

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "limit_train": 128, "hessian_every": 0}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", quiet=True)


def _op_calls(model):
    """(mixed op, per-op call counters) for every MixedOp; counters filled by forward hooks."""
    table = []
    for module in model.modules():
        if isinstance(module, MixedOp):
            counts = [0] * len(module.ops)
            for k, op in enumerate(module.ops):
                op.register_forward_hook(lambda *_, k=k, counts=counts: counts.__setitem__(k, counts[k] + 1))
            table.append((module, counts))
    return table


# ---- the uniform path -------------------------------------------------------------------------------
def test_rsps_weight_step_computes_one_op_per_edge_the_same_in_every_cell(digits):
    search = DifferentiableSearch(resolve_config("rsps", overrides={**TINY, "N": 2}), quiet=True, dataset=digits)
    search.model.set_path("reference")  # op calls are counted on the modules (the fused cell is the same maths)
    table = _op_calls(search.model)
    rows = {id(mixed): row for row, mixed in search.model.mixed_ops("cell")}
    search.train_loader.set_epoch(0)
    batches = iter(search.train_loader)
    for _ in range(3):
        for _, counts in table:
            counts[:] = [0] * len(counts)
        search.weight_step(next(batches))
        chosen: dict[int, set[int]] = {}
        for mixed, counts in table:
            assert sum(counts) == 1, counts  # `none` included: one candidate, no other
            chosen.setdefault(rows[id(mixed)], set()).add(counts.index(1))
        assert len(table) == 6 * 2 * 3 and all(len(ops) == 1 for ops in chosen.values())  # one genotype per forward


def test_the_drawn_path_is_uniform_whatever_alpha():
    relaxation = build_relaxation("uniform_path")
    relaxation.phase = "weights"
    alpha = torch.tensor([[8.0, 0.0, -3.0, 1.0, 2.0]] * 6)  # a peaked softmax, which must not matter
    torch.manual_seed(0)
    draws = torch.stack([relaxation(alpha).argmax(dim=-1) for _ in range(5000)])  # (5000, 6)
    for edge in range(6):
        counts = np.bincount(draws[:, edge].numpy(), minlength=5)
        statistic = float(((counts - 1000.0) ** 2 / 1000.0).sum())
        assert statistic < chi2.ppf(0.999, df=4), (edge, counts)
    # and the edges are drawn independently: the 25 pairs of ops of two edges are uniform too
    pairs = np.bincount((draws[:, 0] * 5 + draws[:, 5]).numpy(), minlength=25)
    assert float(((pairs - 200.0) ** 2 / 200.0).sum()) < chi2.ppf(0.999, df=24)


def test_weights_one_hot_without_alpha_gradient_and_softmax_in_the_arch_phase():
    relaxation = build_relaxation("uniform_path")
    alpha = torch.randn(6, 5, requires_grad=True)
    relaxation.phase = "weights"
    h = relaxation(alpha)
    assert relaxation.hard and not h.requires_grad
    assert torch.equal(h.sum(dim=-1), torch.ones(6)) and torch.equal(h.max(dim=-1).values, torch.ones(6))
    relaxation.phase = "arch"
    assert not relaxation.hard
    assert torch.allclose(relaxation(alpha), torch.softmax(alpha, dim=-1))


def test_rsps_takes_no_architecture_step_and_no_validation_forward(digits):
    search = DifferentiableSearch(resolve_config("rsps", overrides=TINY), quiet=True, dataset=digits)
    before = [a.detach().clone() for a in search.alphas]
    forwards = []
    search.model.register_forward_hook(lambda *_: forwards.append(search.relaxation.phase))
    search.train_epoch()
    steps = min(len(search.train_loader), len(search.valid_loader))
    assert forwards == ["weights"] * steps  # one weight forward per step, nothing else
    assert all(torch.equal(a, b) for a, b in zip(search.alphas, before))
    with pytest.raises(ConfigError, match="no options"):
        DifferentiableSearch(resolve_config("rsps", overrides={**TINY, "arch_options": {"lr": 1}}), quiet=True,
                             dataset=digits)


# ---- SETN's architecture step ------------------------------------------------------------------------
def test_setn_arch_step_gradient_is_the_softmax_first_order_gradient(digits):
    search = DifferentiableSearch(resolve_config("setn", overrides=TINY), quiet=True, dataset=digits)
    search.model.set_path("reference")
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    train_batch, (x, y) = next(iter(search.train_loader)), next(iter(search.valid_loader))
    oracle = copy.deepcopy(search.model)
    oracle.set_relaxation(Softmax())  # DARTS' mixture: every op weighed by softmax(alpha)
    alpha = oracle.named_arch_parameters()["cell"]
    (expected,) = torch.autograd.grad(F.cross_entropy(oracle(x), y), alpha)
    search.arch_step(train_batch, (x, y))
    assert torch.allclose(search.alphas[0].grad, expected, atol=1e-6)
    assert bool((expected != 0).any())


def test_setn_preset_follows_the_nb201_scripts():
    c = resolve_config("setn")
    assert (c.relaxation, c.arch_optimizer, c.selector, c.step_order, c.grad_clip) == (
        "uniform_path", "adam", "shared-weights", "weights-first", None)
    assert (c.arch_lr, c.arch_betas, c.arch_weight_decay) == (3e-4, (0.5, 0.999), 1e-3)
    assert (c.w_lr, c.w_lr_min, c.w_momentum, c.w_nesterov, c.w_weight_decay, c.batch_size, c.epochs) == (
        0.025, 0.001, 0.9, True, 5e-4, 64, 250)
    assert c.selector_options == {"candidates": "top", "n": 100, "batch_size": 512, "batches": 1}
    r = resolve_config("rsps")
    assert (r.arch_optimizer, r.grad_clip, r.selector_options["candidates"]) == ("none", 5.0, "uniform")


# ---- shared-weight accuracy ---------------------------------------------------------------------------
def _dynamic_forward(supernet, genotype, x):
    """xautodl's forward_dynamic through the supernet's own modules: node_i = sum_j op_{ij}(node_j)."""
    ops = list(supernet.op_names)
    net = supernet.net
    x = net.stem(x)
    for cell in net.cells:
        if not isinstance(cell, SearchCell):
            x = cell(x)
            continue
        nodes = [x]
        for target in range(1, NUM_NODES):
            nodes.append(sum(cell.edges[k].ops[ops.index(genotype.ops[k])](nodes[source])
                             for k, (t, source) in enumerate(EDGES) if t == target))
        x = nodes[-1]
    return net.classify(x)


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_shared_weight_accuracy_equals_the_written_out_path(path):
    torch.manual_seed(3)
    space = get_space("nb201")
    supernet = space.supernet(num_classes=4, relaxation=build_relaxation("uniform_path"), C=4, N=1, in_channels=1)
    supernet.set_path(path)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 4, (16,))
    supernet.train()
    for _ in range(3):  # move the BN running statistics off their initial values
        supernet.relaxation.phase = "weights"
        supernet(x)
    rng = np.random.default_rng(0)
    for genotype in [space.sample(rng) for _ in range(5)]:
        supernet.eval()
        with torch.no_grad():
            logits = _dynamic_forward(supernet, genotype, x)
            with fixed_path(supernet, space, genotype):
                assert torch.allclose(supernet(x), logits, atol=1e-5)
            expected = 100.0 * float((logits.argmax(dim=1) == y).float().mean())
        supernet.train()
        assert shared_weight_accuracy(supernet, space, genotype, [(x[:10], y[:10]), (x[10:], y[10:])]) == \
            pytest.approx(expected)
        assert supernet.training  # the mode is restored, and so is the relaxation
        assert supernet.relaxation.__class__.__name__ == "UniformPath"


def test_path_weights_on_darts_leave_unselected_edges_none():
    space = get_space("darts")
    supernet = space.supernet(num_classes=3, C=4, layers=3, in_channels=1)
    genotype = space.sample(0)
    weights = path_weights(space, supernet, genotype)
    none = space.ops.index("none")
    for cell, rows in space.selected_edges(genotype).items():
        kept = dict(rows)
        for row in range(weights[cell].shape[0]):
            op = kept.get(row, "none")
            assert int(weights[cell][row].argmax()) == space.ops.index(op) and float(weights[cell][row].sum()) == 1
        assert int((weights[cell].argmax(dim=1) != none).sum()) == len(rows) - sum(op == "none" for _, op in rows)
    x = torch.randn(2, 1, 8, 8)
    assert shared_weight_accuracy(supernet, space, genotype, [(x, torch.tensor([0, 1]))]) in (0.0, 50.0, 100.0)


def test_top_candidates_are_the_most_probable_genotypes():
    space = get_space("nb201")
    w = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(5)), dim=-1)
    top = top_genotypes(space, {"cell": w}, 7)
    logs = torch.log(w.double()).numpy()
    brute = sorted(itertools.product(range(5), repeat=6), key=lambda c: -sum(logs[e, k] for e, k in enumerate(c)))
    assert [space.to_choices(g) for g in top] == [list(c) for c in brute[:7]]
    assert space.to_choices(top[0]) == w.argmax(dim=-1).tolist()


# ---- options ------------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(candidates=st.one_of(st.sampled_from(["uniform", "top", "sample"]), st.text(max_size=6), st.integers()),
       n=st.one_of(st.integers(-3, 300), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3)),
       batch_size=st.one_of(st.integers(-3, 1024), st.none()), batches=st.integers(-2, 4),
       same=st.booleans())
def test_selector_options_are_built_or_refused_with_a_config_error(candidates, n, batch_size, batches, same):
    valid = (candidates in ("uniform", "top", "sample") and isinstance(n, int) and not isinstance(n, bool)
             and n >= 1 and isinstance(batch_size, int) and batch_size >= 1 and batches >= 1)
    try:
        selector = SharedWeightSelector(candidates, n, batch_size, batches, same)
    except ConfigError:
        assert not valid
    else:
        assert valid and (selector.candidates, selector.n, selector.same_batches) == (candidates, n, same)


# ---- end to end --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, candidates", [("rsps", "uniform"), ("setn", "top"), ("setn", "sample")])
def test_cli_search_writes_the_ranking(tmp_path, method, candidates):
    out = tmp_path / "run"
    options = f"{{candidates: {candidates}, n: 4, batch_size: 32, batches: 1, same_batches: true}}"
    code, _, err = run_cli(["search", "--method", method, "--data", "digits", "--out", str(out), "--quiet",
                            "epochs=1", "C=4", "N=1", "limit_train=128", "batch_size=32", "hessian_every=0",
                            f"selector_options={options}"])
    assert code == 0, err
    selection = json.loads((out / "selection.json").read_text())
    summary = json.loads((out / "genotype.json").read_text())
    scores = [r["score"] for r in selection["ranking"]]
    assert selection["candidates"] == candidates and len(scores) == 4 and scores == sorted(scores, reverse=True)
    assert summary["genotype"] == selection["ranking"][0]["genotype"] and "ground_truth" in summary

"""GDAS: one sampled op per edge per forward, straight-through gradient to every alpha, tau schedule.

Oracles: the reference behaviour of xautodl's TinyNetworkGDAS (../shared/NB201-SUPERNET.md): sampled once
per network forward, same index in every cell, only the argmax op evaluated, the other weights added as
scalars; GDAS.py's tau schedule tau_max - (tau_max - tau_min) * epoch / (epochs - 1).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archsearch.data import load_dataset
from archsearch.relax import build_relaxation
from archsearch.relax.base import use_mean
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.spaces import get_space
from archsearch.spaces.supernet import MixedOp
from archsearch.utils.io import read_jsonl

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3}


def _count_op_calls(model):
    """(mixed op, per-op call counters) for every MixedOp; counters filled by forward hooks."""
    table = []
    for module in model.modules():
        if isinstance(module, MixedOp):
            counts = [0] * len(module.ops)
            for k, op in enumerate(module.ops):
                op.register_forward_hook(lambda *_, k=k, counts=counts: counts.__setitem__(k, counts[k] + 1))
            table.append((module, counts))
    return table


def _row_of(model):
    """MixedOp -> (alpha name, row) it reads."""
    return {id(mixed): (name, row) for name in model.alphas for row, mixed in model.mixed_ops(name)}


@pytest.mark.parametrize("space_name, options", [("nb201", {"C": 4, "N": 2}), ("darts", {"C": 4, "layers": 3})])
def test_one_op_per_edge_per_forward_and_every_alpha_gets_gradient(space_name, options):
    torch.manual_seed(0)
    relaxation = build_relaxation("gumbel_hard")
    model = get_space(space_name).supernet(num_classes=3, relaxation=relaxation, in_channels=1, **options)
    # op calls are counted on the modules; the fused NB201 cell (the same function, tests/test_fast_supernet.py)
    # computes them without calling each module
    model.set_path("reference")
    # BN on running statistics: in training mode a batch-normalised consumer cancels the constant the
    # unsampled weights add, and the reference's gradient is then exactly 0 there too
    model.eval()
    table = _count_op_calls(model)
    rows = _row_of(model)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    reached = {name: torch.zeros_like(alpha, dtype=torch.bool) for name, alpha in model.alphas.items()}
    for _ in range(6):  # several forwards: a fresh sample each, one op per edge each time
        for _, counts in table:
            counts[:] = [0] * len(counts)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        chosen: dict[tuple[str, int], set[int]] = {}
        for mixed, counts in table:
            assert sum(counts) == 1, counts  # exactly one candidate computed on this edge
            chosen.setdefault(rows[id(mixed)], set()).add(counts.index(1))
        # sampled once per network forward: every cell reading an alpha row used the same op
        assert all(len(ops) == 1 for ops in chosen.values())
        for name, alpha in model.alphas.items():
            reached[name] |= alpha.grad != 0
    # every alpha, of sampled and unsampled ops alike, receives gradient (an edge whose node the sample
    # leaves unused gets none in that forward, as in the reference)
    for name, mask in reached.items():
        assert bool(mask.all()), (name, mask)


def test_straight_through_matches_the_reference_formula():
    """Edge output and alpha gradient equal the reference's sum_k (h_k * op_k(x) if k == index else h_k),
    h = one_hot - p.detach() + p."""
    torch.manual_seed(1)
    relaxation = build_relaxation("gumbel_hard")
    relaxation.set_epoch(3, 10)
    model = get_space("nb201").supernet(num_classes=3, relaxation=relaxation, C=4, N=1, in_channels=1)
    model.eval()  # BN on running statistics: each op is a fixed function of x
    mixed = model.mixed_ops("cell")[0][1]
    alpha = torch.nn.Parameter(torch.randn(6, 5))
    x, v = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)

    torch.manual_seed(7)
    h = relaxation(alpha)
    index = int(h[0].argmax())
    (grad,) = torch.autograd.grad((mixed(x, h[0], index) * v).sum(), alpha)

    torch.manual_seed(7)  # the reference, written out: the same Gumbel draw
    g = -torch.empty_like(alpha).exponential_().log()
    probs = torch.softmax((torch.log_softmax(alpha, dim=1) + g) / relaxation.tau, dim=1)
    assert int(probs[0].argmax()) == index
    hardwts = torch.zeros_like(probs).scatter_(1, probs.argmax(1, keepdim=True), 1.0) - probs.detach() + probs
    terms = [hardwts[0, k] * op(x) if k == index else hardwts[0, k] for k, op in enumerate(mixed.ops)]
    reference = sum(terms)
    (grad_ref,) = torch.autograd.grad((reference * v).sum(), alpha)
    assert torch.allclose(mixed(x, h[0].detach(), index), reference.detach(), atol=1e-6)
    assert torch.allclose(grad, grad_ref, atol=1e-6)
    assert bool((grad[0] != 0).all()) and bool((grad[1:] == 0).all())  # only the edge used


def test_weights_are_one_hot_in_value():
    torch.manual_seed(2)
    relaxation = build_relaxation("gumbel_hard")
    h = relaxation(torch.randn(14, 8))
    assert torch.equal(h.detach().max(dim=1).values.round(), torch.ones(14))
    assert torch.allclose(h.detach().sum(dim=1), torch.ones(14))
    assert int((h.detach() != 0).sum()) == 14


def test_tau_falls_linearly_from_10_to_01():
    relaxation = build_relaxation("gumbel_hard")
    for epoch in (0, 1, 124, 249):
        relaxation.set_epoch(epoch, 250)
        assert relaxation.tau == pytest.approx(10 - (10 - 0.1) * epoch / 249)
    relaxation.set_epoch(0, 250)
    assert relaxation.tau == 10
    relaxation.set_epoch(249, 250)
    assert relaxation.tau == pytest.approx(0.1)


def test_the_mean_is_softmax_with_every_op_computed():
    relaxation = build_relaxation("gumbel_hard")
    alpha = torch.randn(6, 5)
    with use_mean(relaxation):
        assert relaxation.hard is False
        assert torch.allclose(relaxation(alpha), torch.softmax(alpha, dim=-1))
    assert relaxation.hard is True
    assert torch.allclose(relaxation.deterministic_weights(alpha), torch.softmax(alpha, dim=-1))


def test_preset_has_the_nb201_gdas_values():
    c = resolve_config("gdas")
    assert (c.relaxation, c.relaxation_options) == ("gumbel_hard", {"tau_max": 10.0, "tau_min": 0.1})
    assert (c.w_lr, c.w_lr_min, c.w_momentum, c.w_nesterov, c.w_weight_decay) == (0.025, 0.001, 0.9, True, 5e-4)
    assert (c.arch_lr, c.arch_betas, c.arch_weight_decay, c.batch_size, c.order) == (3e-4, (0.5, 0.999), 1e-3, 64, 1)


def test_gdas_runs_end_to_end(tmp_path):
    summary = run_search(resolve_config("gdas", overrides={**TINY, "hessian_every": 1}), tmp_path, quiet=True,
                         dataset=load_dataset("digits", quiet=True))
    record = read_jsonl(tmp_path / "metrics.jsonl")[0]
    assert record["tau"] == 10.0  # the first epoch runs at tau_max
    assert summary["genotype"] and summary["method"] == "gdas"
    assert isinstance(record["hessian_max_eigenvalue"], float)

"""The fused NB201 cell's per-forward sharing: one MixWeights for every cell, GDAS' straight-through
constants added once per node, plans kept per cell, and the edges no gradient reaches skipped in backward.
Oracle: the per-op reference cell (``fused = False``), in float64."""

from __future__ import annotations

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.spaces.nb201_supernet import MixWeights, SearchCell
from archsearch.spaces.nb201_network import make_op

TOL = dict(atol=1e-9, rtol=1e-9)


def _straight_through(alpha, choice):
    """GDAS' h = one_hot - stop_gradient(softmax) + softmax for a given choice per edge."""
    soft = torch.softmax(alpha, dim=-1)
    return torch.nn.functional.one_hot(torch.tensor(choice), alpha.shape[-1]).to(soft) - soft.detach() + soft


def _cells(seed=0):
    torch.manual_seed(seed)
    fast = SearchCell(4, track_running_stats=True).double()
    reference = copy.deepcopy(fast)
    reference.fused = False
    return fast, reference


def _run(cell, choice, x0, alpha0, projection, mix_of=None):
    """Output, and gradients w.r.t. x, alpha and every parameter (None as zero) of a random linear loss:
    behind no BN, so every constant shows in alpha's gradient."""
    x, alpha = x0.clone().requires_grad_(), alpha0.clone().requires_grad_()
    weights = _straight_through(alpha, choice) if choice is not None else torch.softmax(alpha, dim=-1)
    hard = list(choice) if choice is not None else None
    mix = mix_of(weights, hard) if mix_of else None
    out = cell(x, weights, hard, None, mix)
    inputs = [x, alpha, *cell.parameters()]
    grads = torch.autograd.grad((out * projection).sum(), inputs, allow_unused=True)
    return out.detach(), [torch.zeros_like(p) if g is None else g for g, p in zip(grads, inputs)]


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=g),
            torch.randn(6, 5, dtype=torch.float64, generator=g),
            torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=g) + 0.5)


def _assert_same(a, b):
    torch.testing.assert_close(a[0], b[0], **TOL)
    for g_a, g_b in zip(a[1], b[1]):
        torch.testing.assert_close(g_a, g_b, **TOL)


@settings(max_examples=40, deadline=None)
@given(choice=st.lists(st.integers(0, 4), min_size=6, max_size=6), seed=st.integers(0, 2**16))
def test_every_hard_choice_matches_the_per_op_cell(choice, seed):
    """Any sampled op per edge (convs carrying their node's constant as BN beta, nodes without a conv
    adding it themselves, nodes no op reads, all `none`): output, every gradient, BN buffers."""
    fast, reference = _cells()
    x0, alpha0, projection = _data(seed)
    _assert_same(_run(fast, choice, x0, alpha0, projection), _run(reference, choice, x0, alpha0, projection))
    for b_f, b_r in zip(fast.buffers(), reference.buffers()):
        torch.testing.assert_close(b_f, b_r, **TOL)


def test_one_mix_shared_by_two_cells_gives_each_cell_its_own_result():
    """Two cells reading one MixWeights (as the supernet's cells do) compute what each computes alone."""
    first, _ = _cells(0)
    second, _ = _cells(1)
    x0, alpha0, projection = _data(5)
    choice = [3, 2, 4, 1, 0, 3]
    alone = [_run(cell, choice, x0, alpha0, projection) for cell in (first, second)]
    x, alpha = x0.clone().requires_grad_(), alpha0.clone().requires_grad_()
    weights = _straight_through(alpha, choice)
    mix = MixWeights(weights, choice, None)
    outs = [cell(x, weights, choice, None, mix) for cell in (first, second)]
    loss = sum((out * projection).sum() for out in outs)
    g_x, g_alpha = torch.autograd.grad(loss, [x, alpha])
    for out, (expected, _) in zip(outs, alone):
        torch.testing.assert_close(out.detach(), expected, **TOL)
    torch.testing.assert_close(g_x, alone[0][1][0] + alone[1][1][0], **TOL)
    torch.testing.assert_close(g_alpha, alone[0][1][1] + alone[1][1][1], **TOL)


def test_a_conv_replaced_by_one_of_the_same_kind_is_read_afresh():
    """The cell keeps its plans (which modules each source runs) between forwards; a module replaced by
    another of the same type and shape must be the one computed next, not the kept one."""
    fast, reference = _cells()
    x0, alpha0, projection = _data(2)
    choice = [3, 3, 2, 3, 2, 2]  # convs only: the plans hold every conv of the cell
    for cell in (fast, reference):
        _run(cell, choice, x0, alpha0, projection)  # the fused cell's plans made
    torch.manual_seed(7)
    new = make_op("nor_conv_3x3", 4, affine=False, track_running_stats=True).double()
    for cell in (fast, reference):
        cell.edges[0].ops[3] = copy.deepcopy(new)
    _assert_same(_run(fast, choice, x0, alpha0, projection), _run(reference, choice, x0, alpha0, projection))
    for b_f, b_r in zip(fast.buffers(), reference.buffers()):
        torch.testing.assert_close(b_f, b_r, **TOL)


def test_a_conv_weight_replaced_is_read_afresh():
    fast, reference = _cells()
    x0, alpha0, projection = _data(3)
    choice = [2, 3, 3, 2, 3, 3]
    for cell in (fast, reference):
        _run(cell, choice, x0, alpha0, projection)
    weight = torch.randn(4, 4, 3, 3, dtype=torch.float64)
    for cell in (fast, reference):
        cell.edges[2].ops[3][1].weight = torch.nn.Parameter(weight.clone())
    _assert_same(_run(fast, choice, x0, alpha0, projection), _run(reference, choice, x0, alpha0, projection))


def test_a_conv_no_gradient_reaches_gets_an_exact_zero_gradient():
    """Node 2 feeds only edge 3<-2, here `none`: no gradient reaches the convs into node 2, which backward
    then skips; their weights still get a gradient of exact zeros (not None), so that the weight step's
    decay and momentum treat them as before."""
    fast, _ = _cells()
    x0, alpha0, projection = _data(4)
    choice = [3, 3, 2, 1, 4, 0]  # edges 2<-0 (conv3) and 2<-1 (conv1) reach nothing
    x, alpha = x0.clone().requires_grad_(), alpha0.clone().requires_grad_()
    out = fast(x, _straight_through(alpha, choice), choice)
    (out * projection).sum().backward()
    dead = [fast.edges[1].ops[3][1].weight, fast.edges[2].ops[2][1].weight]
    live = fast.edges[0].ops[3][1].weight
    for weight in dead:
        assert weight.grad is not None and torch.equal(weight.grad, torch.zeros_like(weight))
    assert live.grad is not None and live.grad.abs().sum() > 0

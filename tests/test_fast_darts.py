"""The fused DARTS search cell (spaces/darts_fused.py) computes the per-op cell's function: outputs, losses,
gradients w.r.t. every weight, alpha and beta, BN running buffers and state_dict keys agree in float64
(the per-op path, ``supernet_path=reference``, is the oracle)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.relax.base import Relaxation
from archsearch.spaces import darts_supernet
from archsearch.spaces.darts_ops import OPS
from archsearch.spaces.darts_supernet import DartsSupernet

TOL = dict(atol=1e-9, rtol=1e-7)


def _pair(relaxation=None, seed=0, scale=1.0, **options):
    torch.manual_seed(seed)
    options = {"C": 4, "layers": 3, "num_classes": 3, **options}  # a normal and two reduction cells
    fast = DartsSupernet(relaxation=relaxation, **options).double()
    with torch.no_grad():  # alphas away from uniform, so every op weight differs
        for alpha in fast.arch_parameters():
            alpha.copy_(scale * torch.randn_like(alpha))
    reference = copy.deepcopy(fast)
    fast.set_path("fast")
    reference.set_path("reference")
    return fast, reference


def _batch(n=3, size=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _grad(p):
    return torch.zeros_like(p) if p.grad is None else p.grad


def _assert_same(fast, reference, x, y, steps=2):
    assert list(fast.state_dict()) == list(reference.state_dict())
    for step in range(steps):  # a second step reads the running buffers the first one updated
        outs = []
        for model in (fast, reference):
            model.zero_grad(set_to_none=True)
            logits = model(x + step)
            F.cross_entropy(logits, y).backward()
            outs.append(logits.detach())
        torch.testing.assert_close(outs[0], outs[1], **TOL)
        params_r = dict(reference.named_parameters())
        for name, p in fast.named_parameters():
            torch.testing.assert_close(_grad(p), _grad(params_r[name]), **TOL, msg=lambda m: f"{name}: {m}")
        buffers_r = dict(reference.named_buffers())
        for name, b in fast.named_buffers():
            torch.testing.assert_close(b, buffers_r[name], **TOL, msg=lambda m: f"{name}: {m}")


def _count_fused(model):
    calls = []
    original = darts_supernet.fused_cell

    def counted(*args):
        calls.append(1)
        return original(*args)

    return calls, counted


@pytest.fixture
def fused_calls(monkeypatch):
    calls, counted = _count_fused(None)
    monkeypatch.setattr(darts_supernet, "fused_cell", counted)
    return calls


def test_softmax_train_then_eval(fused_calls):
    fast, reference = _pair(build_relaxation("softmax"))
    _assert_same(fast, reference, *_batch())
    assert fused_calls, "the fast path was not taken"
    fast.eval(), reference.eval()  # each edge's own running statistics
    _assert_same(fast, reference, *_batch(seed=2), steps=1)


def test_without_running_statistics_and_odd_maps():
    fast, reference = _pair(build_relaxation("softmax"))
    for model in (fast, reference):
        for bn in model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d) and not bn.affine:
                bn.track_running_stats, bn.running_mean, bn.running_var, bn.num_batches_tracked = False, None, None, None
    _assert_same(fast, reference, *_batch(size=7), steps=1)


def test_partial_channels_and_edge_normalization(fused_calls):
    """PC-DARTS: ops on the first C/K channels, bypass (max-pooled on strided edges), shuffle, beta."""
    fast, reference = _pair(build_relaxation("softmax"), partial_channels=2, edge_normalization=True)
    _assert_same(fast, reference, *_batch(size=7))
    assert fused_calls


def test_edge_normalization_full_channels():
    fast, reference = _pair(build_relaxation("softmax"), edge_normalization=True)
    _assert_same(fast, reference, *_batch())


class _FixedHard(Relaxation):
    """Straight-through one-hot weights of a given choice (the same for every edge row), GDAS' form
    without the noise."""

    hard = True

    def __init__(self, choice):
        self.choice = torch.tensor(choice)

    def __call__(self, alpha):
        soft = torch.softmax(alpha, dim=-1)
        return F.one_hot(self.choice, alpha.shape[-1]).to(soft) - soft.detach() + soft


@pytest.mark.parametrize("partial", [None, 2])
def test_hard_choices_every_op(partial):
    """GDAS: each edge runs its one chosen op; every op (none included) is chosen on some edge."""
    choice = [k % len(OPS) for k in range(14)]
    fast, reference = _pair(_FixedHard(choice), partial_channels=partial)
    _assert_same(fast, reference, *_batch())


def test_gumbel_hard_gdas():
    fast, reference = _pair(build_relaxation("gumbel_hard"))
    torch.manual_seed(3)
    state = torch.get_rng_state()
    x, y = _batch()
    outs = []
    for model in (fast, reference):
        torch.set_rng_state(state)  # the same Gumbel sample on both paths
        outs.append(model(x))
    torch.testing.assert_close(outs[0], outs[1], **TOL)


def test_removed_ops_and_an_empty_edge():
    """XNAS' wipeout: a mask removes ops, and every op of one edge (its MixedOp gives zeros)."""
    fast, reference = _pair(build_relaxation("softmax"))
    mask = torch.ones(14, len(OPS), dtype=torch.bool)
    mask[0, 1:] = False
    mask[3, 4:] = False
    mask[5, [1, 2, 3]] = False
    for model in (fast, reference):
        model.set_alive("normal", mask)
        model.set_alive("reduce", mask.flip(0))
    _assert_same(fast, reference, *_batch())


def test_drop_path_and_skip_dropout_fall_back():
    fast, _ = _pair(build_relaxation("softmax"))
    fast.set_drop_path_prob(0.2)
    assert not any(darts_supernet.can_fuse(cell) for cell in fast.cells)
    fast.set_drop_path_prob(0.0)
    assert all(darts_supernet.can_fuse(cell) for cell in fast.cells)
    dropped, _ = _pair(build_relaxation("softmax"), skip_dropout=0.1)
    assert not darts_supernet.can_fuse(dropped.cells[0])  # the normal cell's identity skips


def test_op_subsets_pdarts():
    subsets = {cell: [["none", "max_pool_3x3", "sep_conv_3x3", "skip_connect"]] * 14 for cell in ("normal", "reduce")}
    fast, reference = _pair(build_relaxation("softmax"), op_subsets=subsets)
    _assert_same(fast, reference, *_batch(), steps=1)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.0, 4.0), size=st.integers(2, 7),
       partial=st.sampled_from([None, 2]), train=st.booleans())
def test_random_alphas_and_seeds(seed, scale, size, partial, train):
    fast, reference = _pair(build_relaxation("softmax"), seed=seed, scale=scale, layers=2, partial_channels=partial)
    if not train:
        fast.eval(), reference.eval()
    _assert_same(fast, reference, *_batch(n=2, size=size, seed=seed), steps=1)


def _split(model):
    alphas = list(model.arch_parameters())
    ids = {id(a) for a in alphas}
    return alphas, [p for p in model.parameters() if id(p) not in ids]


def test_half_steps_with_one_side_frozen():
    """The search loop's two half-steps: the architecture step builds its graph with the weights frozen,
    the weight step with alpha frozen (search/bilevel.py ``frozen``); the recomputed convs then rebuild
    the graph they were built with, whatever the flags are by backward."""
    from archsearch.search.bilevel import frozen

    fast, reference = _pair(build_relaxation("softmax"))
    x, y = _batch()
    for side in (0, 1):
        grads = []
        for model in (fast, reference):
            alphas, weights = _split(model)
            wanted, constant = (alphas, weights) if side == 0 else (weights, alphas)
            with frozen(constant):
                loss = F.cross_entropy(model(x), y)
            grads.append(torch.autograd.grad(loss, wanted))
        for g_fast, g_reference in zip(*grads):
            torch.testing.assert_close(g_fast, g_reference, **TOL)


def _mixed_hvp(model, x, y, vector):
    """grad_alpha [grad_w L . v] (search/bilevel.py exact_hvp), inside the model's twice-differentiable context."""
    alphas, weights = _split(model)
    with model.twice_differentiable():
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True, allow_unused=True)
        dot = sum((g * v).sum() for g, v in zip(grads, vector) if g is not None)
        return torch.autograd.grad(dot, alphas)


def test_exact_hessian_vector_product_on_the_fused_path():
    """darts2's mixed second derivative runs on the fused cell (recomputation off) and equals the per-op
    path's, in float64; with recomputation on, a graph for second derivatives is refused, never silently
    wrong (the recomputation's backward is first order)."""
    fast, reference = _pair(build_relaxation("softmax"))
    x, y = _batch()
    _, weights = _split(fast)
    g = torch.Generator().manual_seed(5)
    vector = [torch.randn(w.shape, generator=g, dtype=w.dtype) for w in weights]
    for got, expected in zip(_mixed_hvp(fast, x, y, vector), _mixed_hvp(reference, x, y, vector)):
        torch.testing.assert_close(got, expected, **TOL)
    assert all(cell.recompute for cell in fast.cells)  # restored
    with pytest.raises(ConfigError, match="twice_differentiable"):
        torch.autograd.grad(F.cross_entropy(fast(x), y), weights, create_graph=True, allow_unused=True)


@pytest.mark.parametrize("options", [{}, {"partial_channels": 2, "edge_normalization": True}], ids=["full", "pc"])
def test_every_op_backward_reads_a_dense_gradient(monkeypatch, options):
    """The cell's output concatenates its last nodes, so their gradients arrive as channel slices of the next
    cell's (strided, in neither memory format); each node's gradient is made dense in the network's format
    once, so that no op's BN and conv backward reads a strided gradient (a generic, several times slower
    kernel); PC-DARTS' edge output, which comes back through the shuffle and concatenation, likewise. Every
    gradient reaching a recomputed conv op's backward is dense, and the values are the per-op path's (the
    other tests)."""
    from archsearch.spaces import darts_fused

    seen = []
    original = darts_fused._RecomputedConvBlocks.backward

    def recorded(ctx, grad):
        seen.append(grad.is_contiguous(memory_format=torch.channels_last))
        return original(ctx, grad)

    monkeypatch.setattr(darts_fused._RecomputedConvBlocks, "backward", staticmethod(recorded))
    fast, _ = _pair(build_relaxation("softmax"), layers=4, **options)
    x, y = _batch(size=8)
    F.cross_entropy(fast(x), y).backward()
    assert seen and all(seen), f"{seen.count(False)} of {len(seen)} op gradients strided"


@pytest.mark.parametrize("kernel,dilation", [(3, 1), (5, 1), (3, 2), (5, 2)])
@pytest.mark.parametrize("size", [1, 4, 7])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_gradients(kernel, dilation, size, stride):
    """The depthwise conv whose input gradient is a forward conv with the flipped kernel (strided: the
    stride-1 conv subsampled): gradcheck against finite differences, and equal to F.conv2d's own outputs
    and gradients, in NCHW and channels-last."""
    from archsearch.spaces.darts_fused import _DepthwiseConv

    padding = dilation * (kernel - 1) // 2
    g = torch.Generator().manual_seed(kernel * 10 + dilation + size + 100 * stride)
    w = torch.randn(3, 1, kernel, kernel, generator=g, dtype=torch.float64, requires_grad=True)
    args = ((padding, padding), (dilation, dilation), (stride, stride))
    for memory_format in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 3, size, size + 1, generator=g, dtype=torch.float64).contiguous(
            memory_format=memory_format).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x, w: _DepthwiseConv.apply(x, w, *args), (x, w))
        out = _DepthwiseConv.apply(x, w, *args)
        expected = F.conv2d(x, w, None, stride, padding, dilation, 3)
        assert out.shape == expected.shape and out.is_contiguous(memory_format=memory_format)
        grad = torch.randn(expected.shape, generator=g, dtype=torch.float64)
        ours = torch.autograd.grad(out, (x, w), grad)
        theirs = torch.autograd.grad(expected, (x, w), grad)
        torch.testing.assert_close(out, expected, **TOL)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, **TOL)

"""The search's Hessian diagnostic against RobustDARTS' own computation and against dense Hessians.

Oracles, on tiny supernets in float64:
- a transcription of automl/RobustDARTS ``Analyzer._hessian`` (src/search/analyze.py:157-192: rows of
  d(grad_alpha L_val + arch_weight_decay * alpha), one loss, the upper triangle mirrored) and of the logged
  value ``max(LA.eigvals(H))`` (src/search/train_search.py:415);
- for ``hessian_order: 2``, torch.autograd.functional.hessian of the unrolled objective
  L_val(w - xi (grad_w L_train(w, alpha) + wd w + mu buf), alpha), written out here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.search.config import SearchConfig
from archsearch.search.eigenvalue import (AUTO_BUDGET, Unroll, coupled_weight_decay, eigenvalue_every,
                                          supernet_eigenvalue, unrolled_loss)
from archsearch.spaces import get_space


def _tiny(space: str = "nb201"):
    torch.manual_seed(0)
    relaxation = build_relaxation("softmax")
    if space == "nb201":
        net = get_space("nb201").supernet(3, relaxation=relaxation, C=2, N=1, in_channels=1)
    else:  # a normal and two reduction cells of one node each: two alphas, as the reference's H
        from archsearch.spaces.darts_supernet import DartsSupernet
        net = DartsSupernet(C=2, num_classes=3, layers=3, steps=1, multiplier=1, relaxation=relaxation,
                            in_channels=1)
    net = net.double()
    net.set_path("reference")
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_(0, 0.5)  # away from uniform, where H is nearly degenerate
    batch = lambda: (torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]))  # noqa: E731
    net.train()  # as the reference: its Hessian is taken inside train(), after model.train() (train_search.py:340)
    return net, relaxation, batch(), batch()


def _reference_hessian(loss: torch.Tensor, inputs: list[torch.Tensor], weight_decay: float) -> torch.Tensor:
    """analyze.py:157-192, ``Analyzer._hessian``, in today's autograd."""
    n = sum(p.numel() for p in inputs)
    out = torch.zeros(n, n, dtype=loss.dtype)
    ai = 0
    for i, inp in enumerate(inputs):
        [grad] = torch.autograd.grad(loss, inp, create_graph=True)
        grad = grad.contiguous().view(-1) + weight_decay * inp.view(-1)  # analyze.py:174
        for j in range(inp.numel()):
            parts = torch.autograd.grad(grad[j], inputs[i:], retain_graph=True, allow_unused=True)
            row = torch.cat([torch.zeros_like(x).view(-1) if g is None else g.contiguous().view(-1)
                             for g, x in zip(parts, inputs[i:])])[j:]
            out[ai, ai:] += row.detach()  # ai's row
            if ai + 1 < n:
                out[ai + 1:, ai] += row.detach()[1:]  # ai's column
            ai += 1
    return out


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_first_order_equals_robustdarts_hessian_and_its_logged_eigenvalue(space):
    net, relaxation, _, (x, y) = _tiny(space)
    wd = 1e-3  # args.py:37, --arch_weight_decay
    estimate = supernet_eigenvalue(net, relaxation, (x, y), 200, torch.Generator().manual_seed(0), l2=wd)

    alphas = net.arch_parameters()
    H = _reference_hessian(F.cross_entropy(net(x), y), alphas, wd)  # compute_Hw: model._loss(input_valid, ...)
    logged = max(np.linalg.eigvals(H.numpy()))  # train_search.py:415; numpy orders complex by real part first
    assert estimate == pytest.approx(float(np.real(logged)), rel=1e-8, abs=1e-10)
    # the +wd I is in the logged value: without it the eigenvalue is lower by exactly wd
    unshifted = float(torch.linalg.eigvalsh(H - wd * torch.eye(len(H), dtype=H.dtype))[-1])
    assert float(np.real(logged)) - unshifted == pytest.approx(wd, rel=1e-6)


def test_first_order_without_l2_is_the_previous_estimate():
    """``l2=0`` is the estimate as it was (the Hessian of L_val alone), and the shift moves it by l2."""
    net, relaxation, _, batch = _tiny()
    (alpha,) = net.arch_parameters()
    plain = supernet_eigenvalue(net, relaxation, batch, 200, torch.Generator().manual_seed(0))
    H = torch.autograd.functional.hessian(
        lambda a: F.cross_entropy(functional_call(net, {"alphas.cell": a}, (batch[0],)), batch[1]),
        alpha.detach().clone())
    assert plain == pytest.approx(float(torch.linalg.eigvalsh(H.reshape(30, 30))[-1]), rel=1e-8, abs=1e-10)
    shifted = supernet_eigenvalue(net, relaxation, batch, 200, torch.Generator().manual_seed(0), l2=0.25)
    assert shifted - plain == pytest.approx(0.25, rel=1e-8)


def _momentum(net, train, steps=2):
    weights = net.weight_parameters()
    opt = torch.optim.SGD(weights, lr=0.1, momentum=0.9, weight_decay=3e-4)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(train[0]), train[1]).backward(inputs=weights)
        opt.step()
    return opt


class _ManualBatchNorm(torch.nn.Module):
    """BatchNorm in training mode written out, so that autograd differentiates it to any order."""

    def __init__(self, bn):
        super().__init__()
        self.eps, self.weight, self.bias = bn.eps, bn.weight, bn.bias

    def forward(self, x):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        y = (x - mean) / torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + self.eps)
        return y if self.weight is None else y * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def _manual_norms(module):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d):
            setattr(module, name, _ManualBatchNorm(child))
        else:
            _manual_norms(child)
    return module


@pytest.mark.slow
def test_second_order_equals_the_dense_hessian_of_the_unrolled_loss():
    net, relaxation, train, val = _tiny()
    opt = _momentum(net, train)
    xi, wd = 0.5, 1e-3  # xi large enough for the unrolled terms to matter (checked below)
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    estimate = supernet_eigenvalue(net, relaxation, val, 200, torch.Generator().manual_seed(0), l2=wd,
                                   unroll=Unroll(train, xi, opt))
    assert all(torch.equal(v, buffers[k]) for k, v in net.named_buffers())  # the search is left untouched

    by_name = dict(net.named_parameters())
    momentum = {n: opt.state[p]["momentum_buffer"] for n, p in by_name.items() if p in opt.state}
    oracle = _manual_norms(copy.deepcopy(net))  # torch's fused batch norm is wrong past second derivatives
    named = dict(oracle.named_parameters())
    weight_names = [n for n in named if n != "alphas.cell"]
    group = opt.param_groups[0]

    def unrolled(a):  # L_val(w'(a), a) + wd/2 |a|^2, w' = w - xi (grad_w L_train + wd_w w + mu buf)
        params = {**{n: named[n] for n in weight_names}, "alphas.cell": a}
        train_loss = F.cross_entropy(functional_call(oracle, params, (train[0],)), train[1])
        grads = torch.autograd.grad(train_loss, [params[n] for n in weight_names], create_graph=True)
        for n, g in zip(weight_names, grads):
            w = named[n].detach()
            step = g + group["weight_decay"] * w + group["momentum"] * momentum[n]
            params[n] = w - xi * step
        return F.cross_entropy(functional_call(oracle, params, (val[0],)), val[1]) + 0.5 * wd * (a * a).sum()

    alpha = named["alphas.cell"].detach().clone()
    H = torch.autograd.functional.hessian(unrolled, alpha).reshape(30, 30)
    assert torch.allclose(H, H.T, atol=1e-10)  # with the fused batch norm it is not (by ~0.4 here)
    exact = float(torch.linalg.eigvalsh(H)[-1])
    assert estimate == pytest.approx(exact, rel=1e-7, abs=1e-10)
    first = supernet_eigenvalue(net, relaxation, val, 200, torch.Generator().manual_seed(0), l2=wd)
    assert abs(first - exact) > 1e-3 * abs(exact)  # the two orders differ here, so agreement is not by chance


def test_unrolled_loss_at_zero_xi_is_the_first_order_loss():
    net, _, train, val = _tiny()
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1)
    assert float(unrolled_loss(net, val, Unroll(train, 0.0, opt)).detach()) == pytest.approx(
        float(F.cross_entropy(net(val[0]), val[1]).detach()), rel=1e-12)


def test_the_l2_term_is_the_architecture_optimizers_coupled_weight_decay():
    alpha = torch.nn.Parameter(torch.zeros(3))
    assert coupled_weight_decay(torch.optim.Adam([alpha], weight_decay=1e-3)) == 1e-3
    assert coupled_weight_decay(torch.optim.Adam([alpha], weight_decay=1e-3, decoupled_weight_decay=True)) == 0.0
    assert coupled_weight_decay(torch.optim.AdamW([alpha], weight_decay=1e-2)) == 0.0
    assert coupled_weight_decay(torch.optim.Adagrad([alpha])) == 0.0


@pytest.mark.slow
def test_the_search_reports_robustdarts_eigenvalue_and_order_2_on_request():
    """Through the loop: rdarts' default is first order with Adam's 1e-3 added; ``hessian_order: 2``
    takes the unrolled Hessian on a fixed search-train batch and leaves the loaders where they were."""
    from archsearch.data import load_dataset
    from archsearch.search.loop import DifferentiableSearch
    from archsearch.search.resolve import resolve_config

    config = resolve_config("rdarts", overrides={"C": 2, "N": 1, "batch_size": 16, "limit_train": 64,
                                                 "hessian_iters": 30, "epochs": 1})
    assert config.hessian_order == 1 and config.arch_weight_decay == 1e-3
    search = DifferentiableSearch(config, quiet=True, dataset=load_dataset("digits", quiet=True))
    generator = torch.Generator().manual_seed(config.seed * 1000)
    plain = supernet_eigenvalue(search.model, search.relaxation, search.hessian_batch, 30, generator)
    assert search.hessian_eigenvalue() == pytest.approx(plain + 1e-3, rel=1e-6)

    second = DifferentiableSearch(config.replace(hessian_order=2), quiet=True,
                                  dataset=load_dataset("digits", quiet=True))
    epoch = second.train_loader.epoch
    value = second.hessian_eigenvalue()
    assert second.train_loader.epoch == epoch and np.isfinite(value) and value != pytest.approx(plain + 1e-3)


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.integers(-5, 10), st.sampled_from(["1", "2", "3", "two", 1.5, None])))
def test_hessian_order_takes_1_or_2_only(value):
    if value in (1, 2, "1", "2"):
        assert SearchConfig(hessian_order=value).hessian_order == int(value)
    else:
        with pytest.raises(ConfigError) as err:
            SearchConfig(hessian_order=value)
        assert "hessian_order" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("steps", [1, 11, 100, 782])
def test_auto_cadence_plans_the_unrolled_products_as_dearer(steps):
    first, second = eigenvalue_every("auto", 10, steps, 1), eigenvalue_every("auto", 10, steps, 2)
    assert second >= first
    share = lambda e: 10 * 4 * 6 / (e * steps)  # noqa: E731  products 6 times dearer, as the cadence plans
    assert share(second) <= AUTO_BUDGET + 1e-12 and (second == 1 or share(second - 1) > AUTO_BUDGET)

"""The second-order architecture gradient against the exact one (double backward).

Oracle: d/d alpha L_val(w - xi * (grad_w L_train(w, alpha) + wd * w + mu * buf), alpha), computed
with autograd through the virtual step (create_graph), on a small NB201 supernet in float64.
DARTS' finite-difference formula must agree to a relative error under 1e-2; a slip of sign or of
precedence in eq. 7-8 gives errors of order 1.

The ReLUs of the supernet are swapped for Softplus here: across a ReLU kink the finite difference
sees curvature (a jump in the gradient) that double backward, which takes ReLU'' = 0, does not,
and on a network this small a handful of kinks within eps makes the two differ for that reason
alone. With a smooth activation both compute the same mathematical object.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.search.config import SearchConfig, apply_overrides
from archsearch.search.bilevel import first_order_arch_grads, second_order_arch_grads
from archsearch.spaces import get_space


def _smooth_activations(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Softplus(beta=4.0))
        else:
            _smooth_activations(child)


def _setup(momentum_steps: int):
    torch.manual_seed(0)
    net = get_space("nb201").supernet(num_classes=3, relaxation=build_relaxation("softmax"), C=4, N=1,
                                      track_running_stats=False).double()
    _smooth_activations(net)
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_(0, 0.5)  # away from uniform, so the Hessian term is not negligible
    x_t, y_t = torch.randn(8, 3, 8, 8, dtype=torch.float64), torch.randint(0, 3, (8,))
    x_v, y_v = torch.randn(8, 3, 8, 8, dtype=torch.float64), torch.randint(0, 3, (8,))
    weights = net.weight_parameters()
    opt = torch.optim.SGD(weights, lr=0.1, momentum=0.9, weight_decay=3e-4)
    for _ in range(momentum_steps):  # fill the momentum buffers
        opt.zero_grad()
        F.cross_entropy(net(x_t), y_t).backward(inputs=weights)
        opt.step()
    return net, opt, (x_t, y_t), (x_v, y_v)


def _exact(net, opt, train, val, xi):
    names = dict(net.named_parameters())
    alpha_names = [n for n, p in names.items() if any(p is a for a in net.arch_parameters())]
    weight_names = [n for n in names if n not in alpha_names]
    weights = [names[n] for n in weight_names]
    alphas = [names[n] for n in alpha_names]
    group = opt.param_groups[0]

    def loss(params, batch):
        return F.cross_entropy(functional_call(net, params, (batch[0],)), batch[1])

    params = {n: p for n, p in names.items()}
    grads = torch.autograd.grad(loss(params, train), weights, create_graph=True)  # grad_w L_train(w, alpha)
    unrolled = dict(params)
    for n, w, g in zip(weight_names, weights, grads):
        step = g + group["weight_decay"] * w.detach()
        buf = opt.state.get(w, {}).get("momentum_buffer")
        if buf is not None:
            step = step + group["momentum"] * buf
        unrolled[n] = w.detach() - xi * step  # w' keeps its dependence on alpha through g
    return torch.autograd.grad(loss(unrolled, val), alphas)  # d/d alpha L_val(w'(alpha), alpha)


def _relative_error(a, b):
    a = torch.cat([t.flatten() for t in a])
    b = torch.cat([t.flatten() for t in b])
    return float((a - b).norm() / b.norm())


def test_second_order_matches_exact_hypergradient():
    net, opt, train, val = _setup(momentum_steps=2)
    xi = 0.5  # large enough that the second-order term is a visible part of the gradient
    expected = _exact(net, opt, train, val, xi)
    w_before = [w.detach().clone() for w in net.weight_parameters()]

    got, _ = second_order_arch_grads(
        lambda: F.cross_entropy(net(train[0]), train[1]), lambda: F.cross_entropy(net(val[0]), val[1]),
        net.weight_parameters(), net.arch_parameters(), opt, xi)

    assert _relative_error(got, expected) < 1e-2
    # the weights are restored exactly after the virtual steps
    for w, before in zip(net.weight_parameters(), w_before):
        assert torch.equal(w.detach(), before)


def test_second_order_term_is_not_negligible_here():
    """Guards the oracle above: at this xi the first-order gradient is clearly different, so
    agreement cannot come from the Hessian term being too small to matter."""
    net, opt, train, val = _setup(momentum_steps=2)
    expected = _exact(net, opt, train, val, 0.5)
    first, _ = first_order_arch_grads(lambda: F.cross_entropy(net(val[0]), val[1]), net.arch_parameters())
    assert _relative_error(first, expected) > 5e-2


def test_second_order_with_zero_xi_is_first_order():
    net, opt, train, val = _setup(momentum_steps=0)
    second, _ = second_order_arch_grads(
        lambda: F.cross_entropy(net(train[0]), train[1]), lambda: F.cross_entropy(net(val[0]), val[1]),
        net.weight_parameters(), net.arch_parameters(), opt, 0.0)
    first, _ = first_order_arch_grads(lambda: F.cross_entropy(net(val[0]), val[1]), net.arch_parameters())
    assert _relative_error(second, first) < 1e-12


# -- the shipped ops (ReLU, max-pool) at a realistic width, real images ------------------------------------------
#
# With ReLU kinks the finite difference of the reference measures the jumps of the kinks within its radius
# (benchmarks/second_order_hvp.py), so the default product is the exact one (double backward), and it is the
# default that must agree with the oracle, to roundoff, on the supernets as shipped.

def _digits(n: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real 8x8 grey digits, standardised, in float64."""
    from archsearch.data import load_dataset

    data = load_dataset("digits")
    x = data.train_x[offset:offset + n].double() / 255.0
    return (x - x.mean()) / x.std(), data.train_y[offset:offset + n]


def _shipped(space: str):
    torch.manual_seed(1)
    sizes = {"C": 16, "N": 1} if space == "nb201" else {"C": 4, "layers": 3}
    net = get_space(space).supernet(num_classes=10, relaxation=build_relaxation("softmax"), in_channels=1,
                                    **sizes).double()
    net.set_path("fast")  # as searches run: the first-order parts fused, the product on the reference path
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_(0, 0.5)
    train, val = _digits(16, 0), _digits(16, 16)
    weights = net.weight_parameters()
    opt = torch.optim.SGD(weights, lr=0.1, momentum=0.9, weight_decay=3e-4)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(net(train[0]), train[1]).backward(inputs=weights)
        opt.step()
    return net, opt, train, val


def _library(net, opt, train, val, xi, **options):
    return second_order_arch_grads(
        lambda: F.cross_entropy(net(train[0]), train[1]), lambda: F.cross_entropy(net(val[0]), val[1]),
        net.weight_parameters(), net.arch_parameters(), opt, xi,
        second_derivatives=lambda: net.using_path("reference"), **options)[0]


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_exact_default_matches_the_unrolled_oracle_with_relu_and_pooling(space):
    net, opt, train, val = _shipped(space)
    xi = 0.5
    with net.using_path("reference"):
        expected = _exact(net, opt, train, val, xi)
    first, _ = first_order_arch_grads(lambda: F.cross_entropy(net(val[0]), val[1]), net.arch_parameters())
    assert _relative_error(first, expected) > 5e-2  # the Hessian term matters here
    assert _relative_error(_library(net, opt, train, val, xi), expected) < 1e-8


def _reference_hvp(net, vector, train, r=1e-2):
    """quark0/darts cnn/architect.py:76-91, transcribed (torch.autograd.grad on the module's parameters)."""
    weights = net.weight_parameters()
    R = r / torch.cat([v.flatten() for v in vector]).norm()
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.add_(v, alpha=float(R))
    grads_p = torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), net.arch_parameters())
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.sub_(v, alpha=2 * float(R))
    grads_n = torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), net.arch_parameters())
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.add_(v, alpha=float(R))
    return [(x - y) / (2 * R) for x, y in zip(grads_p, grads_n)]


def test_finite_difference_option_is_the_reference_rule():
    net, opt, train, val = _shipped("nb201")
    xi = 0.5
    # w' and v = grad_w' L_val(w', alpha) by plain autograd, the product by the transcription
    weights, saved = net.weight_parameters(), [w.detach().clone() for w in net.weight_parameters()]
    train_grads = torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), weights)
    with torch.no_grad():
        for w, g in zip(weights, train_grads):
            w.sub_(xi * (g + 3e-4 * w + 0.9 * opt.state[w]["momentum_buffer"]))
    grads = torch.autograd.grad(F.cross_entropy(net(val[0]), val[1]), net.arch_parameters() + weights)
    with torch.no_grad():
        for w, s in zip(weights, saved):
            w.copy_(s)
    n = len(net.arch_parameters())
    expected = [d - xi * h for d, h in zip(grads[:n], _reference_hvp(net, list(grads[n:]), train))]
    got = _library(net, opt, train, val, xi, hvp="finite-difference")
    assert _relative_error(got, expected) < 1e-9
    exact = _library(net, opt, train, val, xi)
    assert _relative_error(got, exact) > 1e-3  # and it is a different rule from the default one here


@given(st.text(max_size=20))
@settings(max_examples=50, deadline=None)
def test_hvp_key_takes_only_its_modes(value):
    modes = {"exact", "finite-difference"}
    if value.strip() in modes and value == value.strip():
        assert apply_overrides(SearchConfig(), {"hvp": value}).hvp == value
    else:
        with pytest.raises(ConfigError, match="hvp"):
            apply_overrides(SearchConfig(), {"hvp": value})


def test_unknown_hvp_mode_is_refused_by_the_function():
    net, opt, train, val = _setup(momentum_steps=0)
    with pytest.raises(ConfigError, match="hvp"):
        second_order_arch_grads(lambda: F.cross_entropy(net(train[0]), train[1]),
                                lambda: F.cross_entropy(net(val[0]), val[1]), net.weight_parameters(),
                                net.arch_parameters(), opt, 0.1, hvp="central")

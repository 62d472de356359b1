"""The Hessian's largest eigenvalue by Lanczos iteration against exact linear algebra."""

from __future__ import annotations

import torch

import pytest

from archsearch.diagnostics.hessian import hessian_vector_product, largest_eigenvalue


def test_quadratic_form_gives_the_largest_eigenvalue():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    eigenvalues = torch.tensor([9.0, 4.0, 3.5, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05, -0.3, -1.0, -2.0], dtype=torch.float64)
    H = q @ torch.diag(eigenvalues) @ q.T
    x = torch.zeros(12, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    loss = lambda: 0.5 * x @ H @ x + b @ x  # noqa: E731  Hessian = H everywhere
    assert abs(largest_eigenvalue(loss, [x], iters=200, generator=g, tol=1e-12) - 9.0) < 1e-9


def test_hessian_vector_product_is_exact_on_split_parameters():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    loss = lambda: (a.sum() * b.prod()) + (a ** 3).sum()  # noqa: E731
    va, vb = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)
    ha, hb = hessian_vector_product(loss, [a, b], [va, vb])
    flat = lambda v: torch.autograd.functional.hessian(  # noqa: E731
        lambda z: (z[:3].sum() * z[3:].prod()) + (z[:3] ** 3).sum(), v)
    H = flat(torch.cat([a.detach(), b.detach()]))
    expected = H @ torch.cat([va, vb])
    assert torch.allclose(torch.cat([ha, hb]), expected, atol=1e-12)


def _quadratic(eigenvalues, seed):
    g = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    H = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    a = torch.zeros(n - 2, dtype=torch.float64, requires_grad=True)  # H split over two parameters
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    return (lambda: 0.5 * torch.cat([a, b]) @ H @ torch.cat([a, b])), [a, b], g


def test_largest_algebraic_not_largest_magnitude():
    # RobustDARTS takes max(eig(H)): a larger negative curvature must not hide the positive one
    loss, params, g = _quadratic([0.7, 0.3, 0.1, -0.2, -5.0, -6.0], 3)
    assert abs(largest_eigenvalue(loss, params, iters=6, generator=g) - 0.7) < 1e-9


def test_exact_once_the_krylov_space_is_exhausted_and_progress_is_reported():
    eigenvalues = torch.linspace(-1, 2, 30).tolist()  # a NAS-Bench-201 alpha has 30 entries
    loss, params, g = _quadratic(eigenvalues, 4)
    calls = []
    value = largest_eigenvalue(loss, params, iters=100, generator=g, tol=0.0, progress=lambda k, n: calls.append(k))
    assert abs(value - 2.0) < 1e-9
    assert calls == list(range(1, len(calls) + 1)) and len(calls) <= 30


def test_supernet_eigenvalue_equals_the_exact_hessians_largest():
    """On a tiny NAS-Bench-201 supernet in float64: the estimate against eigvalsh of the full Hessian of
    L_val w.r.t. alpha, computed independently by torch.autograd.functional.hessian."""
    import torch.nn.functional as F

    from archsearch.relax import build_relaxation
    from archsearch.search.eigenvalue import supernet_eigenvalue
    from archsearch.spaces import get_space

    torch.manual_seed(0)
    relaxation = build_relaxation("softmax")
    net = get_space("nb201").supernet(3, relaxation=relaxation, C=2, N=1, in_channels=1).double()
    net.set_path("reference")
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_(0, 0.5)
    x, y = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    net.eval()
    estimate = supernet_eigenvalue(net, relaxation, (x, y), 40, torch.Generator().manual_seed(0))
    (alpha,) = net.arch_parameters()

    H = torch.autograd.functional.hessian(lambda a: _loss_at(net, alpha, a, x, y), alpha.detach().clone())
    exact = torch.linalg.eigvalsh(H.reshape(alpha.numel(), alpha.numel()))[-1]
    assert estimate == pytest.approx(float(exact), rel=1e-8, abs=1e-10)


def _loss_at(net, alpha, value, x, y):
    """L_val with alpha replaced by ``value`` (a tensor autograd can trace through)."""
    import torch.nn.functional as F
    from torch.func import functional_call

    names = {id(p): n for n, p in net.named_parameters()}
    return F.cross_entropy(functional_call(net, {names[id(alpha)]: value}, (x,)), y)


@pytest.mark.parametrize("steps", [1, 11, 100, 391, 782, 5000])
@pytest.mark.parametrize("iters", [1, 10, 20])
def test_auto_cadence_is_the_most_often_within_its_budget(steps, iters):
    """Planned with every product at its dearest (4 steps): the share of an estimate every `every` epochs
    stays within the budget, and one epoch sooner it would not (unless every epoch already fits)."""
    from archsearch.search.eigenvalue import AUTO_BUDGET, eigenvalue_every

    every = eigenvalue_every("auto", iters, steps)
    share = lambda e: iters * 4 / (e * steps)  # noqa: E731  estimate's steps / the steps between estimates
    assert share(every) <= AUTO_BUDGET + 1e-12
    assert every == 1 or share(every - 1) > AUTO_BUDGET
    assert eigenvalue_every(3, iters, steps) == 3 and eigenvalue_every(0, iters, steps) == 0

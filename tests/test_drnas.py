"""DrNAS: Dirichlet op weights with pathwise gradients, and the KL term towards a Dirichlet prior.

Oracles: the Dirichlet's moments (E[w_k] = beta_k / beta_0, Var[w_k] = m_k (1 - m_k) / (beta_0 + 1)) with
beta = elu(alpha) + 1 as the reference code; d E[w] / d alpha from the mean's formula; the closed-form KL
between Dirichlets, ln G(a0) - sum ln G(a_k) - ln G(b0) + sum ln G(b_k) + sum (a_k - b_k)(psi(a_k) - psi(a0)).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from scipy.special import digamma, gammaln

from archsearch.data import load_dataset
from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.relax.base import use_mean
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.utils.io import read_jsonl

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3}


def test_samples_lie_on_the_simplex_with_the_dirichlet_mean():
    torch.manual_seed(0)
    relaxation = build_relaxation("dirichlet")
    alpha = torch.tensor([0.5, -0.3, 2.0, 0.0, -0.9], dtype=torch.float64)
    n = 40000
    w = relaxation(alpha.expand(n, 5).contiguous())
    assert bool((w >= 0).all()) and torch.allclose(w.sum(dim=1), torch.ones(n, dtype=w.dtype), atol=1e-9)
    beta = F.elu(alpha) + 1
    mean = beta / beta.sum()
    sd = torch.sqrt(mean * (1 - mean) / (beta.sum() + 1) / n)
    assert bool(((w.mean(dim=0) - mean).abs() < 5 * sd).all())
    variance = mean * (1 - mean) / (beta.sum() + 1)
    assert torch.allclose(w.var(dim=0), variance, rtol=0.05)


def test_gradients_are_pathwise():
    """The gradient of the Monte-Carlo mean of c . w matches d (c . E[w]) / d alpha."""
    torch.manual_seed(1)
    relaxation = build_relaxation("dirichlet")
    alpha = torch.tensor([0.3, -0.5, 1.2, 0.1], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    n = 40000
    (grad_mc,) = torch.autograd.grad((relaxation(alpha.expand(n, 4)) @ c).mean(), alpha)
    beta = F.elu(alpha) + 1
    (grad_exact,) = torch.autograd.grad((beta / beta.sum()) @ c, alpha)
    assert torch.allclose(grad_mc, grad_exact, atol=0.02)
    assert bool((grad_mc != 0).all())


def test_kl_term_is_the_closed_form_towards_the_prior():
    relaxation = build_relaxation("dirichlet", kl_weight=1e-3, prior=1.0)
    alphas = {"normal": torch.randn(14, 8, dtype=torch.float64), "reduce": torch.randn(14, 8, dtype=torch.float64)}
    expected = 0.0
    for alpha in alphas.values():
        a = (F.elu(alpha) + 1).numpy()
        b = torch.ones_like(alpha).numpy()
        a0, b0 = a.sum(axis=1), b.sum(axis=1)
        kl = (gammaln(a0) - gammaln(a).sum(axis=1) - gammaln(b0) + gammaln(b).sum(axis=1)
              + ((a - b) * (digamma(a) - digamma(a0)[:, None])).sum(axis=1))
        expected += kl.sum()
    assert float(relaxation.extra_loss(alphas)) == pytest.approx(1e-3 * expected, rel=1e-9)
    at_prior = {"cell": torch.zeros(6, 5)}  # elu(0) + 1 = 1: the prior itself
    assert float(relaxation.extra_loss(at_prior)) == pytest.approx(0.0, abs=1e-6)
    assert build_relaxation("dirichlet", kl_weight=0).extra_loss(alphas) is None
    with pytest.raises(ConfigError):
        build_relaxation("dirichlet", prior=0.0)


def test_mean_is_what_was_learned():
    relaxation = build_relaxation("dirichlet")
    alpha = torch.randn(6, 5)
    beta = F.elu(alpha) + 1
    with use_mean(relaxation):
        assert torch.allclose(relaxation(alpha), beta / beta.sum(dim=1, keepdim=True))
    assert torch.equal(relaxation.deterministic_weights(alpha).argmax(dim=1), alpha.argmax(dim=1))


def test_drnas_runs_end_to_end_and_samples_genotypes(tmp_path):
    import numpy as np

    from archsearch.search.loop import DifferentiableSearch

    data = load_dataset("digits", quiet=True)
    preset = resolve_config("drnas")  # 201-space/train_search.py defaults
    assert (preset.relaxation, preset.epochs, preset.w_weight_decay, preset.arch_lr) == ("dirichlet", 100, 3e-4, 3e-4)
    config = resolve_config("drnas", overrides=TINY)
    summary = run_search(config, tmp_path / "run", quiet=True, dataset=data)
    record = read_jsonl(tmp_path / "run" / "metrics.jsonl")[0]
    assert record["kl_to_prior"] >= 0 and summary["genotype"]
    search = DifferentiableSearch(config, quiet=True, dataset=data)
    draw = search.relaxation.sampler(search.view())
    assert draw(np.random.default_rng(0)) == draw(np.random.default_rng(0))  # seeded

"""DrNAS: Dirichlet op weights with pathwise gradients, and the KL term towards a Dirichlet prior.

Oracles: the Dirichlet's moments (E[w_k] = beta_k / beta_0, Var[w_k] = m_k (1 - m_k) / (beta_0 + 1)) with
beta = elu(alpha) + 1 as the reference code; d E[w] / d alpha from the mean's formula; the closed-form KL
between Dirichlets, ln G(a0) - sum ln G(a_k) - ln G(b0) + sum ln G(b_k) + sum (a_k - b_k)(psi(a_k) - psi(a0));
the reference's choice of regulariser by ``--reg_type`` (architect.py, search_model.py), transcribed below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import digamma, gammaln

from archsearch.data import load_dataset
from archsearch.errors import ConfigError, UnknownNameError
from archsearch.relax import build_relaxation
from archsearch.relax.base import use_mean
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.utils.io import read_jsonl
from cli_contract import assert_one_line_error

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


def closed_form_kl(alphas: dict[str, torch.Tensor]) -> float:
    """sum over every edge of KL(Dir(elu(alpha) + 1) || Dir(1)), in closed form."""
    total = 0.0
    for alpha in alphas.values():
        a = (F.elu(alpha.detach().double()) + 1).numpy()
        b = np.ones_like(a)
        a0, b0 = a.sum(axis=1), b.sum(axis=1)
        kl = (gammaln(a0) - gammaln(a).sum(axis=1) - gammaln(b0) + gammaln(b).sum(axis=1)
              + ((a - b) * (digamma(a) - digamma(a0)[:, None])).sum(axis=1))
        total += float(kl.sum())
    return total


def test_kl_term_is_the_closed_form_towards_the_prior():
    relaxation = build_relaxation("dirichlet", kl_weight=1e-3, prior=1.0)
    alphas = {"normal": torch.randn(14, 8, dtype=torch.float64), "reduce": torch.randn(14, 8, dtype=torch.float64)}
    assert float(relaxation.extra_loss(alphas)) == pytest.approx(1e-3 * closed_form_kl(alphas), rel=1e-9)
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


# -- the regulariser: KL or L2, never both (xiangning-chen/DrNAS --reg_type) ------------------------------
def reference_regulariser(reg_type: str, reg_scale: float) -> tuple[float, float]:
    """(Adam's weight decay on alpha, weight of the KL term) as the reference picks them:
    architect.py:17-20 (l2: weight_decay = reg_scale; kl: weight_decay = 0) and 201-space/search_model.py:62-71
    (the KL term, scaled by reg_scale, only when reg_type == 'kl')."""
    if reg_type == "l2":
        return reg_scale, 0.0
    if reg_type == "kl":
        return 0.0, reg_scale
    raise ValueError(reg_type)  # the reference's argparse choices are ['l2', 'kl']


#: our preset for each of the reference's modes, and the configuration key that carries reg_scale in it
MODES = {"kl": ("drnas", "relaxation_options"), "l2": ("drnas-l2", "arch_weight_decay")}


def regulariser_in_use(search: DifferentiableSearch) -> tuple[float, float]:
    """What a built search applies: the weight decay of its architecture optimizer's groups, and the KL
    weight, read as extra_loss / closed-form KL at random concentrations of the supernet's alpha shapes."""
    decays = {group["weight_decay"] for group in search.a_optimizer.param_groups}
    assert len(decays) == 1
    generator = torch.Generator().manual_seed(0)
    alphas = {name: torch.randn(alpha.shape, generator=generator, dtype=torch.float64)
              for name, alpha in search.model.named_arch_parameters().items()}
    extra = search.relaxation.extra_loss(alphas)
    return decays.pop(), 0.0 if extra is None else float(extra) / closed_form_kl(alphas)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", quiet=True)


@pytest.mark.parametrize("reg_type", ["kl", "l2"])
def test_presets_regularise_as_the_reference(reg_type, digits):
    method, _ = MODES[reg_type]
    assert resolve_config(method).epochs == 100  # the preset itself, before the small network below
    search = DifferentiableSearch(resolve_config(method, overrides=TINY), quiet=True, dataset=digits)
    weight_decay, kl_weight = regulariser_in_use(search)
    assert (weight_decay, kl_weight) == pytest.approx(reference_regulariser(reg_type, 1e-3), rel=1e-9)
    # the decay reaches alpha: from a zero loss gradient, Adam's first step (bias-corrected moments
    # m = g, v = g^2) is  alpha - lr * g / (|g| + eps)  with g = weight_decay * alpha, and alpha stays put
    # without decay
    before = [a.detach().clone() for a in search.alphas]
    for a in search.alphas:
        a.grad = torch.zeros_like(a)
    search.a_optimizer.step()
    (group,) = search.a_optimizer.param_groups
    for a, a0 in zip(search.alphas, before):
        g = weight_decay * a0.double()
        expected = a0.double() - group["lr"] * g / (g.abs() + group["eps"])
        assert torch.allclose(a.detach().double(), expected, rtol=0, atol=1e-7)
        assert torch.equal(a.detach(), a0) == (weight_decay == 0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reg_type=st.sampled_from(["kl", "l2"]),
       reg_scale=st.floats(min_value=1e-6, max_value=1.0, allow_nan=False, allow_infinity=False))
def test_any_reg_scale_goes_where_the_reference_puts_it(reg_type, reg_scale, digits):
    """A user's reg_scale, set on the key of the preset's mode, reaches the built parts as in the reference."""
    method, key = MODES[reg_type]
    value = {"kl_weight": reg_scale, "prior": 1.0} if key == "relaxation_options" else reg_scale
    config = resolve_config(method, overrides={**TINY, key: value})
    search = DifferentiableSearch(config, quiet=True, dataset=digits)
    assert regulariser_in_use(search) == pytest.approx(reference_regulariser(reg_type, reg_scale), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(suffix=st.text(alphabet="-lk2x0", min_size=1, max_size=4))
def test_a_misspelt_preset_is_a_one_line_error(suffix):
    name = "drnas" + suffix
    if name == "drnas-l2":
        return
    with pytest.raises(UnknownNameError, match="unknown method"):
        resolve_config(name)
    assert_one_line_error(["search", "--method", name, "--quiet"], "unknown method", "drnas")


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(["arch_weight_decay", "kl_weight"]),
       value=st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False))
def test_a_negative_regulariser_is_a_one_line_error(key, value):
    option = f"{key}={value!r}" if key == "arch_weight_decay" else f"relaxation_options={{kl_weight: {value!r}}}"
    assert_one_line_error(["search", "--method", "drnas-l2", "--quiet", option], key)

"""BaLeNAS as a composition on the loop: gaussian relaxation + VAdam + (sample-and-rank) selector."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.data import load_dataset
from archsearch.errors import ArchSearchError, ConfigError
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.meter import Meter
from archsearch.search.resolve import resolve_config
from archsearch.spaces.supernet import OpWeights
from archsearch.search.runner import run_search
from archsearch.utils.io import read_jsonl

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", quiet=True)


def test_balenas_is_the_default_method():
    assert resolve_config().method == "balenas"
    config = resolve_config("balenas-tf")
    assert (config.relaxation, config.arch_optimizer, config.selector) == ("gaussian", "vadam", "sample_and_rank")
    assert config.selector_options == {"proxy": "synflow", "n": 100}
    assert resolve_config("balenas2").order == 2


def test_arch_step_sees_a_sample_and_weight_step_the_mean(digits):
    """The op weights in the architecture step are softmax of alpha ~ N(mu, sigma^2); in the weight
    step, softmax(mu). Checked by recording what the relaxation is called with."""
    search = DifferentiableSearch(resolve_config("balenas", overrides=TINY), quiet=True, dataset=digits)
    seen = {"arch": [], "weights": []}
    original = search.relaxation.__call__

    class Spy(OpWeights):
        def __call__(self, alpha):
            seen[search.relaxation.phase].append(alpha.detach().clone())
            return original(alpha)

    search.model.relaxation = Spy()
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    train_batch, valid_batch = next(zip(search.train_loader, search.valid_loader))
    mu = search.alphas[0].detach().clone()
    sigma = search.a_optimizer.sigma()[0]
    search.arch_step(train_batch, valid_batch, Meter())
    mu_after = search.alphas[0].detach().clone()
    search.weight_step(train_batch, Meter())
    sampled = seen["arch"][0]
    assert not torch.allclose(sampled, mu)
    # the draw is N(mu, sigma^2): standardised residuals look standard normal (30 values)
    z = ((sampled - mu) / sigma).flatten()
    assert abs(float(z.mean())) < 0.8 and 0.4 < float(z.std()) < 1.8
    assert torch.equal(seen["weights"][0], mu_after)


def test_metrics_record_the_distribution(tmp_path, digits):
    run_search(resolve_config("balenas", overrides=TINY), tmp_path, quiet=True, dataset=digits)
    record = read_jsonl(tmp_path / "metrics.jsonl")[0]
    sigma = np.array(record["sigma"]["cell"])
    assert sigma.shape == (6, 5) and (sigma > 0).all()
    # at most the entropy of independent uniform choices among the 4 non-none ops on 6 edges
    assert 0 < record["arch_entropy"] <= record["arch_entropy_max"] + 1e-9
    assert record["arch_entropy_max"] == pytest.approx(6 * math.log(4))
    assert (tmp_path / "distribution.png").is_file()


def test_entropy_estimate_is_exact_for_a_known_distribution(digits):
    """With mu = 0 and equal sigma, every non-none op is equally likely on every edge: the
    entropy over architectures is 6 log 4."""
    search = DifferentiableSearch(resolve_config("balenas", overrides=TINY), quiet=True, dataset=digits)
    with torch.no_grad():
        search.alphas[0].zero_()
    record = search.relaxation.describe(search.view())
    assert record["arch_entropy"] == pytest.approx(6 * math.log(4), abs=0.02)


def test_balenas_tf_ranks_samples_by_synflow(tmp_path, digits):
    overrides = {**TINY, "selector_options": {"proxy": "synflow", "n": 8}}
    summary = run_search(resolve_config("balenas-tf", overrides=overrides), tmp_path, quiet=True, dataset=digits)
    selection = json.loads((tmp_path / "selection.json").read_text())
    scores = [r["score"] for r in selection["ranking"]]
    assert selection["proxy"] == "synflow" and 1 <= len(scores) <= 8
    assert scores == sorted(scores, reverse=True)
    assert summary["genotype"] == selection["ranking"][0]["genotype"]


@pytest.mark.parametrize("proxy", ["synflow", "snip"])
def test_balenas_tf_ranks_darts_space_cells_whose_network_has_an_auxiliary_head(tmp_path, digits, proxy):
    """The DARTS network's auxiliary head makes its training-mode output a pair: the candidates are scored
    without it, as the proxy study scores them."""
    overrides = {"space": "darts", "C": 4, "layers": 2, "epochs": 1, "batch_size": 32, "limit_train": 64,
                 "hessian_every": 0, "selector_options": {"proxy": proxy, "n": 3}}
    summary = run_search(resolve_config("balenas-tf", overrides=overrides), tmp_path, quiet=True, dataset=digits)
    scores = [r["score"] for r in json.loads((tmp_path / "selection.json").read_text())["ranking"]]
    assert len(scores) == 3 and all(math.isfinite(s) for s in scores)
    assert summary["genotype"] == json.loads((tmp_path / "selection.json").read_text())["ranking"][0]["genotype"]


def test_sample_and_rank_needs_a_distribution(tmp_path, digits):
    config = resolve_config("darts", overrides={**TINY, "selector": "sample_and_rank",
                                                "selector_options": {"n": 4}})
    with pytest.raises(ConfigError, match="random_and_rank"):
        run_search(config, tmp_path, quiet=True, dataset=digits)


def test_gaussian_needs_a_variational_optimizer(digits):
    with pytest.raises(ConfigError, match="variational"):
        DifferentiableSearch(resolve_config("balenas", overrides={**TINY, "arch_optimizer": "adam"}),
                             quiet=True, dataset=digits)


def test_search_sets_the_prior_precision_per_search_valid_example(digits):
    """delta = delta~ N with N the search-valid size, so sigma_0 = 1 / sqrt(delta); an explicit
    prior_precision in arch_options is kept as given."""
    from archsearch.optim.arch_optimizers import PRIOR_PRECISION_PER_EXAMPLE

    search = DifferentiableSearch(resolve_config("balenas", overrides=TINY), quiet=True, dataset=digits)
    n = search.a_optimizer.param_groups[0]["dataset_size"]
    assert n == len(search.valid_loader.y)
    delta = search.a_optimizer.param_groups[0]["prior_precision"]
    assert delta == pytest.approx(PRIOR_PRECISION_PER_EXAMPLE * n)
    torch.testing.assert_close(search.a_optimizer.sigma()[0],
                               torch.full_like(search.alphas[0], 1 / math.sqrt(delta)))
    explicit = resolve_config("balenas", overrides={**TINY, "arch_options": {"prior_precision": 2.0}})
    search = DifferentiableSearch(explicit, quiet=True, dataset=digits)
    assert search.a_optimizer.param_groups[0]["prior_precision"] == 2.0


def test_weight_sample_option_draws_in_weight_steps_but_logs_and_selects_the_mean():
    from archsearch.optim import VAdam
    from archsearch.relax import build_relaxation

    relaxation = build_relaxation("gaussian", weight_sample=True)
    alpha = torch.nn.Parameter(torch.randn(6, 5))
    relaxation.attach(VAdam([alpha], prior_precision=4.0))  # q starts at the prior: sigma = 0.5
    relaxation.phase = "weights"
    torch.manual_seed(0)
    assert not torch.allclose(relaxation(alpha), torch.softmax(alpha, -1))  # a draw of q
    torch.testing.assert_close(relaxation.deterministic_weights(alpha), torch.softmax(alpha, -1).detach())


def test_von_in_a_search_gets_the_hessian_diagonal_of_the_validation_loss(digits):
    """arch_optimizer=von: the loop hands VON the gradient's graph, built on the supernet's twice-differentiable
    path, and the curvature VON uses is the diagonal of the Hessian of L_val in alpha, which central
    differences of the gradient give independently (float64, at the mean: perturb=False)."""
    overrides = {**TINY, "arch_optimizer": "von", "arch_options": {"curvature": "exact", "perturb": False}}
    search = DifferentiableSearch(resolve_config("balenas", overrides=overrides), quiet=True, dataset=digits)
    search.model.double()
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    (x_t, y_t), (x_v, y_v) = next(zip(search.train_loader, search.valid_loader))
    train_batch, valid_batch = (x_t.double(), y_t), (x_v.double(), y_v)
    optimizer, used = search.a_optimizer, []
    curvature = optimizer._curvature
    optimizer._curvature = lambda p, grad: used.append(curvature(p, grad)) or used[-1]
    mu = [a.detach().clone() for a in search.alphas]

    def gradient_at(values):
        with torch.no_grad():
            for alpha, value in zip(search.alphas, values):
                alpha.copy_(value)
        with search.model.twice_differentiable():
            loss = search._loss(valid_batch, None, with_extra=True, step="arch")
        return [g.detach() for g in torch.autograd.grad(loss, search.alphas)]

    search.arch_step(train_batch, valid_batch, Meter())
    assert len(used) == len(mu)
    # small: the tiny supernet's ReLUs and BatchNorms put kinks in the gradient within 1e-4 of mu, where a
    # difference measures the jump, not the (almost-everywhere) Hessian VON takes
    eps = 1e-6
    for k, (alpha_mu, h) in enumerate(zip(mu, used)):
        expected = torch.empty_like(alpha_mu).view(-1)
        for i in range(alpha_mu.numel()):
            step = torch.zeros_like(alpha_mu).view(-1)
            step[i] = eps
            plus = [m + (step.view_as(m) if j == k else 0) for j, m in enumerate(mu)]
            minus = [m - (step.view_as(m) if j == k else 0) for j, m in enumerate(mu)]
            expected[i] = (gradient_at(plus)[k].view(-1)[i] - gradient_at(minus)[k].view(-1)[i]) / (2 * eps)
        expected = expected.view_as(alpha_mu).clamp(min=0)  # VON keeps h >= 0 (nonnegative=True)
        assert expected.abs().max() > 0
        torch.testing.assert_close(h, expected, rtol=1e-3, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("method, overrides", [("balenas", {"order": 2}), ("enas", {})])
def test_von_is_refused_where_no_first_order_graph_exists(method, overrides):
    with pytest.raises(ConfigError, match="arch_optimizer=von"):
        resolve_config(method, overrides={"epochs": 1, "arch_optimizer": "von", **overrides})


VON_VALUES = st.one_of(st.sampled_from(["hutchinson", "exact", "Exact", "", "none", None, True, False, 0, -1, 3, 2.5, 1e30,
                                        float("nan"), [1], {"a": 1}]), st.integers(-3, 4))


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.dictionaries(st.sampled_from(["curvature", "hutchinson_samples", "nonnegative", "mc_samples",
                                                "momentum", "perturb", "init_precision", "curve"]),
                               VON_VALUES, max_size=3))
def test_von_options_run_a_step_or_are_refused_as_config_errors(digits, options):
    """Hostile arch_options for VON: refused when the configuration is read (the package's own error), or the
    architecture step runs and leaves a finite mean and a positive precision."""
    try:
        config = resolve_config("balenas", overrides={**TINY, "C": 2, "arch_optimizer": "von", "arch_options": options})
    except ArchSearchError:
        return
    search = DifferentiableSearch(config, quiet=True, dataset=digits)
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    train_batch, valid_batch = next(zip(search.train_loader, search.valid_loader))
    search.arch_step(train_batch, valid_batch, Meter())
    assert all(torch.isfinite(a).all() for a in search.alphas)
    assert all((p > 0).all() for p in search.a_optimizer.precision())

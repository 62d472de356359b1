"""DSCD: the annealed Beta proposal, the acceptance and switching rules, escaping a local minimum,
and checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from archsearch.errors import ConfigError
from archsearch.groundtruth.synthetic import get_function
from archsearch.optim.dscd import DSCD, beta_parameters, cosine_progress


def test_beta_interpolates_mean_and_sd_from_uniform_to_a_dirac():
    assert beta_parameters(0.9, 0.0) == pytest.approx((1.0, 1.0))  # uniform at the start
    assert beta_parameters(0.9, 1.0) is None  # a Dirac at the end
    for u in (0.05, 0.5, 0.93):
        for s in (0.1, 0.5, 0.9, 0.99):
            a, b = beta_parameters(u, s)
            mean = a / (a + b)
            sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))  # closed-form moments of Beta(a, b)
            assert mean == pytest.approx((1 - s) * 0.5 + s * u)
            assert sd == pytest.approx((1 - s) / math.sqrt(12))
    assert cosine_progress(0, 100) == 0.0 and cosine_progress(100, 100) == 1.0
    assert cosine_progress(50, 100) == pytest.approx(0.5)


def test_first_proposals_are_uniform_over_the_domain():
    x = torch.nn.Parameter(torch.zeros(1))
    dscd = DSCD(torch.optim.SGD([x], lr=0.0), bound=(-5.0, 5.0), rounds=10**6, seed=0)
    draws = np.array([dscd.propose(3.0) for _ in range(4000)])
    assert stats.kstest(draws, stats.uniform(loc=-5, scale=10).cdf).pvalue > 1e-3
    late = DSCD(torch.optim.SGD([x], lr=0.0), bound=(-5.0, 5.0), rounds=100, seed=0)
    late.steps = 99  # s close to 1: proposals concentrate on the current value
    assert np.std([late.propose(3.0) for _ in range(500)]) < 0.05


def _quadratic(x):
    def closure():
        x.grad = None
        value = ((x - 2.0) ** 2).sum()
        value.backward()
        return value.detach()
    return closure


def test_switching_after_n_stale_steps_and_acceptance_below_the_best_of_k():
    x = torch.nn.Parameter(torch.tensor([-4.0]))
    # a local optimizer that never moves: no local step improves, so DSCD turns global after n steps
    dscd = DSCD(torch.optim.SGD([x], lr=0.0), bound=5.0, memory=3, patience=2, rounds=1000, seed=3)
    closure = _quadratic(x)
    modes = []
    for _ in range(60):
        before, mode = float(x.detach()), dscd.mode
        best = min(dscd.losses) if dscd.losses else math.inf
        dscd.step(closure)
        modes.append(mode)
        if mode == "global" and float(x.detach()) != before:
            assert (float(x.detach()) - 2.0) ** 2 < best  # accepted only below the best of the last K losses
    assert modes[:3] == ["local"] * 3  # the first local step improves on an empty history, then 2 stale
    assert modes[3] == "global"
    assert dscd.counts["accepted"] > 0 and dscd.counts["switches"] >= 2
    assert abs(float(x.detach()) - 2.0) < 1.0  # global steps alone moved x towards the minimum


def test_dscd_escapes_the_local_minimum_of_styblinski_tang_where_adam_stays():
    f = get_function("styblinski-tang")
    local_min, global_min = 2.746803, -2.903534  # per-coordinate minimisers (published)
    escaped = 0
    for seed in range(5):
        finals = {}
        for wrap in (False, True):
            x = torch.nn.Parameter(torch.tensor([local_min, local_min], dtype=torch.float64))
            adam = torch.optim.Adam([x], lr=0.05)
            opt = DSCD(adam, bound=(f.low, f.high), rounds=600, seed=seed) if wrap else adam

            def closure():
                opt.zero_grad()
                value = f(x)
                value.backward()
                return value.detach()

            for _ in range(600):
                opt.step(closure)
            finals[wrap] = x.detach().numpy()
        assert np.allclose(finals[False], local_min, atol=1e-2)  # Adam stays in the local basin
        escaped += bool(np.allclose(finals[True], global_min, atol=5e-2))
    assert escaped >= 4


def test_state_dict_resumes_exactly():
    def run(steps, state=None):
        x = torch.nn.Parameter(torch.tensor([-4.0, 3.0]))
        dscd = DSCD(torch.optim.Adam([x], lr=0.01), bound=5.0, memory=3, patience=2, rounds=100, seed=7)
        if state is not None:
            x.data.copy_(state[0])
            dscd.load_state_dict(state[1])
        for _ in range(steps):
            dscd.step(_quadratic(x))
        return x.detach().clone(), dscd.state_dict()

    straight, _ = run(40)
    half = run(20)
    resumed, _ = run(20, half)
    assert torch.equal(straight, resumed)


def test_bad_arguments_raise_config_errors():
    x = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ConfigError, match="closure"):
        DSCD(torch.optim.SGD([x], lr=0.1), rounds=10).step()
    with pytest.raises(ConfigError, match="domain"):
        DSCD(torch.optim.SGD([x], lr=0.1), bound=(1.0, -1.0))
    with pytest.raises(ConfigError, match="rounds"):
        DSCD(torch.optim.SGD([x], lr=0.1), patience=1).propose(0.0)

"""DSCD: the annealed Beta proposal, the acceptance and switching rules (the paper's, and our earlier
loss window, each against a transcription driven by scripted losses), escaping a local minimum, and
checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
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


def _transcription(losses, memory, patience, rule):
    """The step kinds of DSCD fed ``losses`` in turn, one per step, by a plain reading of the rules.

    Acceptance (both rules): a proposal is kept when its loss is below the best of the last K kept
    losses. A local step's loss is always kept. Paper: after at least n steps of the current kind,
    switch when the step's loss did not improve on the previous kept loss (a rejected proposal never
    improves). Window: switch after n consecutive steps that did not beat the best of the last K."""
    kept, kinds, kind, run, stale = [], [], "local", 0, 0
    for loss in losses:
        kinds.append(kind)
        best = min(kept[-memory:]) if kept else math.inf
        if kind == "local":
            improved = loss < (kept[-1] if kept else math.inf) if rule == "paper" else loss < best
            kept.append(loss)
        else:
            improved = loss < best
            if improved:
                kept.append(loss)
        run += 1
        stale = 0 if improved else stale + 1
        if (run >= patience and not improved) if rule == "paper" else stale >= patience:
            kind, run, stale = ("global" if kind == "local" else "local"), 0, 0
    return kinds


def _scripted_kinds(losses, memory, patience, rule):
    """The kinds DSCD takes when its closure returns ``losses`` in turn (the point never matters)."""
    x = torch.nn.Parameter(torch.zeros(3))
    dscd = DSCD(torch.optim.SGD([x], lr=0.0), bound=1.0, memory=memory, patience=patience,
                rounds=len(losses), seed=0, switch=rule)
    script = iter(losses)

    def closure():
        x.grad = torch.zeros_like(x)
        return torch.tensor(next(script))

    kinds = []
    for _ in losses:
        kind, before = dscd.mode, dict(dscd.counts)
        dscd.step(closure)
        assert dscd.counts[kind] == before[kind] + 1  # the step taken is the kind announced
        kinds.append(kind)
    return kinds


def test_paper_rule_step_by_step_on_a_scripted_loss_sequence():
    # n = 3, K = 2. Local 5, 4, 4: the third does not improve, switch. Global 3 (accepted), 9
    # (rejected, but only 2 global steps so far: stay), 2 (accepted: below min(4, 3)), 8 (rejected,
    # 4 >= 3 steps: switch). Local 1, 0, 0: switch. Global 7, 7, 7 all rejected: switch after the
    # third. Local 5: not below 0, but the first local step of its phase.
    losses = [5, 4, 4, 3, 9, 2, 8, 1, 0, 0, 7, 7, 7, 5]
    expected = ["local"] * 3 + ["global"] * 4 + ["local"] * 3 + ["global"] * 3 + ["local"]
    assert _transcription(losses, memory=2, patience=3, rule="paper") == expected
    assert _scripted_kinds(losses, memory=2, patience=3, rule="paper") == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=60), st.integers(1, 5), st.integers(1, 5),
       st.sampled_from(["paper", "window"]))
def test_switching_rules_match_their_transcription(losses, memory, patience, rule):
    losses = [float(v) for v in losses]  # few distinct values: ties (no improvement) are frequent
    assert _scripted_kinds(losses, memory, patience, rule) == _transcription(losses, memory, patience, rule)


def test_the_paper_rule_switches_sooner_than_the_window_rule():
    # losses that go down and then up and down again: always above the window's best once they rise
    losses = [9.0, 8.0, 7.0, 6.0, 7.0, 6.5, 6.8, 6.4, 6.6, 6.3] + [6.2] * 10
    assert _scripted_kinds(losses, 3, 2, "paper")[:6] == ["local"] * 5 + ["global"]
    assert _scripted_kinds(losses, 3, 2, "window")[:7] == ["local"] * 6 + ["global"]


def test_window_rule_reproduces_the_earlier_behaviour_exactly():
    # counts and end point of this run recorded with DSCD before the paper's rule became the default
    f = get_function("styblinski-tang")
    x = torch.nn.Parameter(torch.tensor([2.5, -1.0, 0.3], dtype=torch.float64))
    dscd = DSCD(torch.optim.Adam([x], lr=0.05), bound=(f.low, f.high), memory=4, patience=3, rounds=300,
                seed=11, switch="window")

    def closure():
        dscd.zero_grad()
        value = f(x)
        value.backward()
        return value.detach()

    for _ in range(300):
        dscd.step(closure)
    assert dscd.counts == {"local": 212, "global": 88, "accepted": 3, "switches": 55}
    assert x.detach().numpy() == pytest.approx([-2.903558243, -2.903512026, -2.903524761], abs=1e-8)


def test_switching_after_n_stale_steps_and_acceptance_below_the_best_of_k():
    x = torch.nn.Parameter(torch.tensor([-4.0]))
    # a local optimizer that never moves: no local step improves, so DSCD turns global after n steps
    dscd = DSCD(torch.optim.SGD([x], lr=0.0), bound=5.0, memory=3, patience=2, rounds=1000, seed=3,
                switch="window")
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
    paper = DSCD(torch.optim.SGD([x], lr=0.0), bound=5.0, memory=3, patience=2, rounds=1000, seed=3)
    kinds = []
    for _ in range(3):
        kinds.append(paper.mode)
        paper.step(closure)
    assert kinds == ["local", "local", "global"]  # the paper's rule: n = 2 steps, the second not better


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
    for bad in ("Paper", "", None, 1):
        with pytest.raises(ConfigError, match="switch must be one of paper, window"):
            DSCD(torch.optim.SGD([x], lr=0.1), switch=bad)


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.floats(allow_nan=True)))
def test_any_other_switch_value_is_a_one_line_config_error(value):
    x = torch.nn.Parameter(torch.zeros(1))
    if value in ("paper", "window"):
        assert DSCD(torch.optim.SGD([x], lr=0.1), switch=value).switch == value
        return
    with pytest.raises(ConfigError) as caught:
        DSCD(torch.optim.SGD([x], lr=0.1), switch=value)
    assert "\n" not in str(caught.value)


def test_the_switch_is_an_arch_option_of_the_dscd_presets():
    from archsearch.optim import ARCH_OPTIMIZERS
    from archsearch.search.resolve import resolve_config

    assert DSCD(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)).switch == "paper"
    for rule in ("paper", "window"):
        config = resolve_config("fairdarts-dscd", overrides={"arch_options": {"patience": 3, "switch": rule}})
        built = ARCH_OPTIMIZERS.get(config.arch_optimizer)([torch.nn.Parameter(torch.zeros(2))], config)
        assert (built.switch, built.patience) == (rule, 3)
    with pytest.raises(ConfigError, match="switch must be one of paper, window, got 'sideways'"):
        resolve_config("fairdarts-dscd", overrides={"arch_options": {"switch": "sideways"}})

"""Synthetic test functions against their published minima, and ``optbench`` end to end."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from archsearch.errors import ConfigError, UnknownNameError
from archsearch.groundtruth.synthetic import FUNCTIONS, get_function
from archsearch.cli.studies import add_optbench_arguments, cmd_optbench
from archsearch.studies.optbench import optbench, parse_lrs

# Surjanovic & Bingham, Virtual Library of Simulation Experiments: minimiser and minimum per dimension.
PUBLISHED = {"styblinski-tang": (-2.903534, -39.16599), "schwefel": (420.9687, 0.0), "rastrigin": (0.0, 0.0)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_functions_reach_their_published_minimum(name):
    f = get_function(name)
    argmin, per_dim = PUBLISHED[name]
    for dim in (1, 4):
        x = torch.full((dim,), argmin, dtype=torch.float64)
        assert float(f(x)) == pytest.approx(per_dim * dim, abs=1e-3 * dim)
        assert f.minimum(dim) == pytest.approx(per_dim * dim, abs=1e-3 * dim)
        points = torch.from_numpy(np.random.default_rng(0).uniform(f.low, f.high, size=(20000, dim)))
        assert float(f(points).min()) >= f.minimum(dim) - 1e-9


def test_styblinski_tang_has_a_local_minimum_in_each_coordinate():
    x = torch.tensor([2.746803], dtype=torch.float64, requires_grad=True)
    value = get_function("styblinski-tang")(x)
    (grad,) = torch.autograd.grad(value, x)
    assert abs(float(grad)) < 1e-4 and float(value.detach()) == pytest.approx(-25.0294, abs=1e-3)


def test_bad_input_is_reported():
    with pytest.raises(UnknownNameError):
        get_function("ackley")
    with pytest.raises(ConfigError, match="cos:"):
        parse_lrs("0.1,fast")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        optbench("rastrigin", 2, ["sgd"], [(0.1, False)], 10, 1, 0)


@pytest.mark.parametrize("seed", [2**32 - 1, 4_294_968])
def test_every_seed_the_cli_accepts_runs_and_repeats(seed):
    """Each run's optimizer seed is derived from --seed and the run; it must stay in the 32 bits DSCD and
    CMA-ES take for every --seed the command line accepts (0..2**32 - 1)."""
    args = ("rastrigin", 2, ["adam+dscd", "cmaes"], [(0.1, False)])
    traces = optbench(*args, steps=20, runs=2, seed=seed)
    assert set(traces) == {"adam+dscd lr=0.1", "cmaes"} and all(np.isfinite(t).all() for t in traces.values())
    again = optbench(*args, steps=20, runs=2, seed=seed)
    assert all(np.array_equal(traces[k], again[k]) for k in traces)


def test_dscd_improves_every_adam_setting_on_styblinski_tang():
    lrs = parse_lrs("0.05,cos:0.1")
    traces = optbench("styblinski-tang", 4, ["adam", "adam+dscd"], lrs, steps=400, runs=3, seed=0)
    for lr, cosine in lrs:
        tag = f"{'cos ' if cosine else ''}lr={lr:g}"
        adam, dscd = traces[f"adam {tag}"][:, -1], traces[f"adam+dscd {tag}"][:, -1]
        assert dscd.mean() < adam.mean()
        assert (adam > get_function("styblinski-tang").minimum(4) + 1.0).all()  # Adam: local minima only


def test_optbench_writes_summary_and_plot(tmp_path):
    parser = argparse.ArgumentParser()
    add_optbench_arguments(parser)
    args = parser.parse_args(["--function", "rastrigin", "--dim", "2", "--optimizers", "adam,adam+dscd,uniform,cmaes",
                              "--lrs", "0.1", "--steps", "60", "--runs", "2", "--out", str(tmp_path), "--quiet"])
    assert cmd_optbench(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"adam lr=0.1", "adam+dscd lr=0.1", "uniform", "cmaes"}
    for stats in summary.values():
        assert set(stats) == {"mean", "std", "best"} and stats["best"] <= stats["mean"] and stats["best"] >= 0.0
    assert (tmp_path / "convergence.png").stat().st_size > 1000
    again = optbench("rastrigin", 2, ["uniform"], [(0.1, False)], 60, 2, 0)["uniform"]
    assert summary["uniform"]["mean"] == pytest.approx(float(again[:, -1].mean()))  # same seed, same result
    assert set(FUNCTIONS) == set(PUBLISHED)

"""The ``auto`` cadence of the Hessian diagnostic plans a product's cost in the search's own steps: a
search that computes one op per edge (GDAS) pays more of its steps for a product computed at the mean."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.search.eigenvalue import AUTO_BUDGET, HARD_HVP_COST_IN_STEPS, HVP_COST_IN_STEPS, eigenvalue_every


@settings(max_examples=200, deadline=None)
@given(steps=st.integers(1, 100_000), iters=st.integers(1, 50), order=st.sampled_from([1, 2]))
def test_hard_cadence_is_the_most_often_within_the_budget(steps, iters, order):
    every = eigenvalue_every("auto", iters, steps, order, hard=True)
    factor = 6.0 if order == 2 else 1.0
    share = lambda e: iters * HARD_HVP_COST_IN_STEPS * factor / (e * steps)  # noqa: E731
    assert share(every) <= AUTO_BUDGET + 1e-12
    assert every == 1 or share(every - 1) > AUTO_BUDGET
    assert every >= eigenvalue_every("auto", iters, steps, order)  # never more often than a soft search's


def test_the_nb201_protocol_cadences():
    """391 steps an epoch, 10 Lanczos steps, 5% of the search: every 3rd epoch for DARTS (10 x 4 steps
    against 0.05 x 391 an epoch: 2.05 epochs), every 9th for GDAS (10 x 16 / 19.55 = 8.2)."""
    assert HVP_COST_IN_STEPS == 4.0 and HARD_HVP_COST_IN_STEPS == 16.0 and AUTO_BUDGET == 0.05
    assert eigenvalue_every("auto", 10, 391) == 3
    assert eigenvalue_every("auto", 10, 391, hard=True) == 9
    assert eigenvalue_every(3, 10, 391, hard=True) == 3 and eigenvalue_every(0, 10, 391, hard=True) == 0


@pytest.mark.parametrize("method, hard", [("gdas", True), ("darts", False), ("snas", False)])
def test_a_search_plans_with_its_relaxation(method, hard):
    from archsearch.search.loop import DifferentiableSearch
    from archsearch.search.resolve import resolve_config

    config = resolve_config(method, overrides={"data": "digits", "C": 2, "N": 1, "limit_train": 256,
                                               "batch_size": 8, "epochs": 1})
    search = DifferentiableSearch(config, quiet=True)
    steps = min(len(search.train_loader), len(search.valid_loader))
    assert search.hessian_every == eigenvalue_every("auto", config.hessian_iters, steps, hard=hard)

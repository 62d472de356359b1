"""The ``auto`` cadence of the Hessian diagnostic plans a product's cost in the search's own steps: a
search that computes one op per edge (GDAS) pays more of its steps for a product computed at the mean."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.search.eigenvalue import HARD_HVP_COST_IN_STEPS, HVP_COST_IN_STEPS, eigenvalue_every


@settings(max_examples=200, deadline=None)
@given(steps=st.integers(1, 100_000), iters=st.integers(1, 50), order=st.sampled_from([1, 2]))
def test_hard_cadence_is_the_most_often_within_a_tenth(steps, iters, order):
    every = eigenvalue_every("auto", iters, steps, order, hard=True)
    factor = 6.0 if order == 2 else 1.0
    share = lambda e: iters * HARD_HVP_COST_IN_STEPS * factor / (e * steps)  # noqa: E731
    assert share(every) <= 0.1 + 1e-12
    assert every == 1 or share(every - 1) > 0.1
    assert every >= eigenvalue_every("auto", iters, steps, order)  # never more often than a soft search's


def test_the_nb201_protocol_cadences():
    """391 steps an epoch, 10 Lanczos steps: every 2nd epoch for DARTS, every 5th for GDAS."""
    assert HVP_COST_IN_STEPS == 4.0 and HARD_HVP_COST_IN_STEPS == 16.0
    assert eigenvalue_every("auto", 10, 391) == 2
    assert eigenvalue_every("auto", 10, 391, hard=True) == 5
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

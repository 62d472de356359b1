"""Sample-and-rank selectors: distinct candidates, capped attempts, ranking by the proxy."""

from __future__ import annotations

import math

import pytest
import torch

from archsearch.errors import ConfigError, UnknownNameError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.search.selectors.rank import (
    RANK_SELECTORS,
    RandomAndRank,
    SampleAndRank,
    random_and_rank,
    sample_and_rank,
)
from archsearch.spaces import get_space

TINY = {"C": 4, "N": 1}


def batch(n=4):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 16, 16, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_random_and_rank_by_params_picks_the_largest_cell_of_the_benchmark():
    """At the benchmark's network size (C=16, N=5) the params proxy must rank the candidates as the
    NAS-Bench-201 table's parameter counts do."""
    space, table = get_space("nb201"), NB201Table.load()
    x, y = batch(2)
    best, ranking = random_and_rank("params", 12, space, x, y, seed=3)
    arches = [r.arch for r in ranking]
    assert len(set(arches)) == 12
    table_params = [table.query(a).params_M for a in arches]
    assert table_params == sorted(table_params, reverse=True)
    assert space.to_string(best) == arches[0]
    for r in ranking:  # the table holds parameters in millions, rounded
        assert r.score / 1e6 == pytest.approx(table.query(r.arch).params_M, abs=1e-3)


def test_random_and_rank_is_reproducible_and_draws_distinct_cells():
    space = get_space("nb201")
    x, y = batch()
    a = RandomAndRank("synflow", 8, seed=1, network_options=TINY).select(space, x, y)
    b = RandomAndRank("synflow", 8, seed=1, network_options=TINY).select(space, x, y)
    assert [r.arch for r in a[1]] == [r.arch for r in b[1]] and [r.score for r in a[1]] == [r.score for r in b[1]]
    scores = [r.score for r in a[1]]
    assert scores == sorted(scores, reverse=True) and len({r.arch for r in a[1]}) == 8


def test_sample_and_rank_keeps_distinct_draws_and_stops_after_max_attempts():
    space = get_space("nb201")
    x, y = batch()
    pool = [space.sample(i) for i in range(3)]
    calls = []

    def sampler(rng):  # a peaked distribution: only three genotypes ever come out
        calls.append(1)
        return pool[int(rng.integers(3))]

    selector = SampleAndRank("params", 10, seed=0, max_attempts=50, network_options=TINY)
    best, ranking = selector.select(space, x, y, sampler=sampler)
    assert sorted(r.arch for r in ranking) == sorted({space.to_string(g) for g in pool})
    assert len(calls) == 50  # wanted 10 distinct, only 3 exist: the cap ends the search
    assert ranking[0].score == max(r.score for r in ranking) and best == ranking[0].genotype


def test_sample_and_rank_stops_as_soon_as_it_has_n():
    space = get_space("nb201")
    x, y = batch()
    calls = []

    def sampler(rng):
        calls.append(1)
        return space.sample(rng)

    _, ranking = sample_and_rank("params", 4, space, sampler, x, y, network_options=TINY)
    assert len(ranking) == 4 and len(calls) < 10  # 5^6 cells: repeats are rare


def test_undefined_scores_rank_last():
    space = get_space("nb201")
    x, y = batch()
    dead = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # jacob_cov is NaN here
    alive = space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    order = iter([dead, alive])
    _, ranking = SampleAndRank("jacob_cov", 2, network_options=TINY).select(space, x, y, sampler=lambda rng: next(order))
    assert ranking[0].arch == space.to_string(alive) and math.isnan(ranking[-1].score)


def test_sample_and_rank_without_a_sampler_says_so():
    x, y = batch()
    with pytest.raises(ConfigError, match="sampler"):
        SampleAndRank("synflow", 3).select(get_space("nb201"), x, y)


def test_bad_arguments():
    with pytest.raises(UnknownNameError):
        RandomAndRank("synflo", 3)
    with pytest.raises(ConfigError):
        RandomAndRank("synflow", 0)


def test_registry_names_both():
    assert {"sample_and_rank", "random_and_rank"} <= set(RANK_SELECTORS.names())
    assert RANK_SELECTORS.get("random_and_rank") is RandomAndRank

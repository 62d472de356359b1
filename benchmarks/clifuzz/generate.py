"""Seeded case generation across the command surfaces; each case is labelled by the oracle."""

from __future__ import annotations

import random

from .fixtures import Env
from .gen_commands import CommandCases
from .gen_search import DARTS_TINY, TINY, SearchCases
from .runner import Case

__all__ = ["DARTS_TINY", "SURFACES", "TINY", "Gen", "generate"]


class Gen(SearchCases, CommandCases):
    """Every generator; a surface names one of its methods."""


#: surface name -> (generator method, share of the cases)
SURFACES = {
    "global": ("global_argv", 4), "spaces": ("spaces", 1), "nb201": ("nb201", 8), "info": ("info", 7),
    "show": ("show", 6), "train": ("train", 10), "search": ("search", 17), "search-config": ("search_config", 6),
    "resume": ("resume", 6), "data": ("data", 7), "demo": ("demo", 1), "bench": ("bench", 9),
    "proxies": ("proxies", 6), "zero-cost": ("zero_cost", 4), "optbench": ("optbench", 5),
}


def generate(env: Env, count: int, seed: int, surfaces: list[str] | None = None, accept=None,
             ids: list[int] | None = None) -> list[Case]:
    """``count`` cases; case i depends only on (seed, i, surfaces), so any one can be rebuilt alone.
    ``accept(case)``, where given, keeps only the cases it likes (drawn until ``count`` are kept);
    ``ids``: exactly these cases (a rerun of the defects of an earlier attack)."""
    gen = Gen(env)
    names = surfaces or list(SURFACES)
    weights = [SURFACES[n][1] for n in names]
    cases = []
    for i in (sorted(set(ids)) if ids is not None else range(100 * count)):
        if len(cases) == count:
            break
        rng = random.Random(f"{seed}:{i}")
        name = rng.choices(names, weights)[0]
        case = getattr(gen, SURFACES[name][0])(rng)
        case.id = i
        if accept is None or accept(case):
            cases.append(case)
    return cases

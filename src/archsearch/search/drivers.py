"""Search drivers: methods made of several searches (P-DARTS' stages), selected by ``SearchConfig.driver``.

A driver is ``driver(config, out_dir, *, search_class, resume, quiet, dataset) -> (last search, genotype,
summary)``, handed the loop's class (``DifferentiableSearch``) by the runner. Importing this module registers every driver in ``DRIVERS``.
"""

from __future__ import annotations

from collections.abc import Callable

from archsearch.registry import Registry

DRIVERS: Registry[Callable] = Registry("search driver")

from archsearch.search import progressive  # noqa: E402,F401  (registers "progressive")

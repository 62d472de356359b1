"""Search drivers: methods made of several searches (P-DARTS' stages), selected by ``SearchConfig.driver``.

A driver is ``driver(config, out_dir, *, search_class, resume, quiet, dataset) -> (last search, genotype,
summary)``, handed the loop's class (``DifferentiableSearch``) by the runner.
"""

from __future__ import annotations

from collections.abc import Callable

from archsearch.registry import Registry

DRIVERS: Registry[Callable] = Registry("search driver")

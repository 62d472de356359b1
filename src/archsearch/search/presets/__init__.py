"""Method presets, one module per family; importing this package registers them all."""

from archsearch.search.presets import balenas, darts  # noqa: F401
from archsearch.search.presets import fairdarts, xnas  # noqa: F401
from archsearch.search.presets import pcdarts, pdarts  # noqa: F401
from archsearch.search.presets import drnas, gdas, robust, snas  # noqa: F401

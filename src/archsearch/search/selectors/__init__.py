"""Selectors: learned architecture parameters -> one genotype of the space. Importing this package
registers every selector in ``SELECTORS``."""

from archsearch.search.selectors.base import SELECTORS, Selector
from archsearch.search.selectors import argmax, max_skips, online_to_batch, rank, threshold  # noqa: F401
from archsearch.search.selectors import shared_weights  # noqa: F401

from archsearch.search.selectors.argmax import ArgmaxSelector

__all__ = ["SELECTORS", "Selector", "ArgmaxSelector"]

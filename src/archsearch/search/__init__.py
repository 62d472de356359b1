"""Differentiable search: the bilevel loop, named methods, selectors, epoch hooks, drivers."""

from archsearch.search.config import SearchConfig
from archsearch.search.methods import METHODS, Method
from archsearch.search.selectors import SELECTORS, Selector

__all__ = ["SearchConfig", "METHODS", "Method", "SELECTORS", "Selector", "DifferentiableSearch"]


def __getattr__(name):
    # The loop pulls in data loading; listing the methods should not.
    if name == "DifferentiableSearch":
        from archsearch.search.loop import DifferentiableSearch

        return DifferentiableSearch
    raise AttributeError(name)

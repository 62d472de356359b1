"""Differentiable search: the bilevel loop, named methods, selectors, epoch hooks, drivers."""

from archsearch.search.config import SearchConfig
from archsearch.search.methods import METHODS, Method

__all__ = ["SearchConfig", "METHODS", "Method", "SELECTORS", "Selector", "DifferentiableSearch"]


def __getattr__(name):
    # The selectors and the loop pull in torch and data loading; listing the methods or printing a
    # configuration should not.
    if name in ("SELECTORS", "Selector"):
        from archsearch.search import selectors

        return getattr(selectors, name)
    if name == "DifferentiableSearch":
        from archsearch.search.loop import DifferentiableSearch

        return DifferentiableSearch
    raise AttributeError(name)

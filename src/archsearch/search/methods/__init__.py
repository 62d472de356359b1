"""Named methods: the settings of each method's paper, one module per family. ``archsearch methods``
lists ``METHODS``; importing this package registers every method."""

from archsearch.search.methods.base import METHODS, Method, register_method
# in this order ``archsearch methods`` lists them
from archsearch.search.methods import balenas, darts  # noqa: F401
from archsearch.search.methods import fairdarts, xnas  # noqa: F401
from archsearch.search.methods import pcdarts, pdarts  # noqa: F401
from archsearch.search.methods import drnas, gdas, robust, snas  # noqa: F401
from archsearch.search.methods import oneshot  # noqa: F401
from archsearch.search.methods import enas  # noqa: F401

__all__ = ["METHODS", "Method", "register_method"]

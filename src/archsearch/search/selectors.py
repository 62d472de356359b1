"""Selectors: learned architecture parameters -> one genotype of the space."""

from __future__ import annotations

from archsearch.registry import Registry

SELECTORS: Registry[type["Selector"]] = Registry("selector")


class Selector:
    """Turns a finished (or running) search into a genotype. A selector's options are its
    constructor's keyword parameters (``selector_options`` are checked against them)."""

    def select(self, search) -> object:
        raise NotImplementedError


@SELECTORS.register("argmax")
class ArgmaxSelector(Selector):
    """The space's argmax rule on the relaxation's deterministic weights: NB201 argmax per edge
    excluding ``none``; DARTS top-2 incoming edges per node by strongest non-none weight."""

    def select(self, search):
        return search.space.genotype_from_weights(search.deterministic_weights(), exclude=("none",))

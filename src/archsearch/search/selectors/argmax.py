"""The space's own argmax rule."""

from __future__ import annotations

from archsearch.search.selectors.base import SELECTORS, Selector


@SELECTORS.register("argmax")
class ArgmaxSelector(Selector):
    """The space's argmax rule on the relaxation's deterministic weights: NB201 argmax per edge
    excluding ``none``; DARTS top-2 incoming edges per node by strongest non-none weight."""

    def select(self, view):
        return view.space.genotype_from_weights(view.deterministic_weights(), exclude=("none",))

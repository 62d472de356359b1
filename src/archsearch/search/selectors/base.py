"""The selector interface and its registry: learned architecture parameters -> one genotype."""

from __future__ import annotations

from archsearch.registry import Registry

SELECTORS: Registry[type["Selector"]] = Registry("selector")


class Selector:
    """Turns a finished (or running) search, seen through a SearchView (search/view.py), into a genotype.
    A selector's options are its constructor's keyword parameters (``selector_options`` are checked
    against them)."""

    def check_space(self, space) -> None:
        """Raise a ConfigError where the selector cannot serve ``space`` (checked before a search starts)."""

    def select(self, view) -> object:
        raise NotImplementedError

    def record(self, view) -> dict:
        """Fields added to each epoch's metrics record."""
        return {}

    def invalid_reason(self, view, genotype) -> str | None:
        """Why ``genotype`` is no architecture to report (a collapsed cell), or None where it is one."""
        return None

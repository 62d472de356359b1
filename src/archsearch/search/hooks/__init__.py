"""Epoch hooks of the search loop (EpochHook, hooks/base.py): early-stopping rules, P-DARTS' schedule of
dropout on skip connections, anything else that watches a run. Importing this package registers every
early-stopping rule in ``EARLY_STOPPING``."""

from __future__ import annotations

from archsearch.settings import build
from archsearch.errors import ConfigError
from archsearch.search.hooks.base import EARLY_STOPPING, EpochHook
from archsearch.search.hooks import early_stop, skip_dropout  # noqa: F401  (registers the rules)


def early_stop_names(config) -> list[str]:
    """``early_stop``: a rule name, or several joined by ','."""
    return [n.strip() for n in str(config.early_stop or "").split(",") if n.strip()]


def build_hooks(config) -> list[EpochHook]:
    """The hooks a configuration asks for; ``early_stop_options`` holds each rule's options by its name."""
    names = early_stop_names(config)
    options = config.early_stop_options
    stray = [key for key in options if key not in names]
    if stray:
        raise ConfigError(f"early_stop_options has options for {stray[0]!r}, which early_stop does not name "
                          f"(early_stop: {config.early_stop or 'none'})")
    return [build(f"early-stopping rule '{name}'", EARLY_STOPPING.get(name), options.get(name)) for name in names]


__all__ = ["EARLY_STOPPING", "EpochHook", "build_hooks", "early_stop_names"]

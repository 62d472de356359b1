"""Epoch hooks of the search loop: early-stopping rules (and anything else that watches a run).

A hook is called after each epoch as ``hook(search, record) -> str | None``; a string stops the
search and is recorded as the reason in the summary. Hooks may also offer ``record(search) ->
dict`` (fields added to metrics.jsonl) and ``state_dict`` / ``load_state_dict`` (kept in the
checkpoint, so a resumed run decides as an uninterrupted one would).
"""

from __future__ import annotations

from archsearch.errors import ConfigError
from archsearch.registry import Registry
from archsearch.checks import build

EARLY_STOPPING: Registry[type] = Registry("early-stopping rule")


def early_stop_names(config) -> list[str]:
    """``early_stop``: a rule name, or several joined by ','."""
    return [n.strip() for n in str(config.early_stop or "").split(",") if n.strip()]


def build_hooks(config) -> list:
    """The hooks a configuration asks for; ``early_stop_options`` holds each rule's options by its name."""
    names = early_stop_names(config)
    options = config.early_stop_options
    stray = [key for key in options if key not in names]
    if stray:
        raise ConfigError(f"early_stop_options has options for {stray[0]!r}, which early_stop does not name "
                          f"(early_stop: {config.early_stop or 'none'})")
    return [build(f"early-stopping rule '{name}'", EARLY_STOPPING.get(name), options.get(name)) for name in names]

"""Named method presets: a relaxation, an architecture optimizer and a selector, with the
hyper-parameters of the method's paper. ``archsearch methods`` lists this registry.

Each method family lists its presets in a module of ``archsearch.search.methods``: settings only; the
components they name register in their own packages (optim/, relax/, search/selectors/, search/hooks/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archsearch.registry import Registry


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    paper: str
    #: SearchConfig fields this method sets (relaxation, arch_optimizer, selector, values)
    settings: dict[str, Any] = field(default_factory=dict)


METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    METHODS.register(method.name)(method)
    return method


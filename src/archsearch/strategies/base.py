"""The ask/tell interface every black-box strategy implements, and the registry of strategies.

A strategy proposes genotypes (``ask``), is told what they scored (``tell``) and keeps everything it needs
to continue in ``state_dict()``. It never evaluates anything itself: ``run`` (see ``budget.py``) pairs it
with an evaluator, or a user drives it with their own training code. Optional strategies register a loader
that imports their dependency only when the strategy is built.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Iterable

import numpy as np

from archsearch.errors import ArchSearchError, ConfigError
from archsearch.evaluate.result import EvalResult
from archsearch.registry import Registry
from archsearch.spaces import get_space
from archsearch.strategies.budget import run_strategy

STRATEGIES: Registry = Registry("strategy")


def objective_of(result) -> float:
    """A tell takes an EvalResult or a bare number (the objective)."""
    value = result.objective if isinstance(result, EvalResult) else float(result)
    return value if math.isfinite(value) else -math.inf


class Strategy(ABC):
    """Base of every strategy. Subclasses implement ``_propose`` and optionally ``_observe``."""

    name = "strategy"

    def __init__(self, space, seed: int | None = None):
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.history: list[tuple[Hashable, float]] = []  # (genotype, objective), in tell order
        self.pending: list[Hashable] = []  # asked and not yet told
        self._warm: deque = deque()  # genotypes proposed before the strategy's own proposals

    # -- the interface --------------------------------------------------------------------------
    def ask(self, n: int | None = None):
        """One genotype, or a list of ``n`` (proposed jointly: each knows the earlier ones are pending)."""
        if n is None:
            return self._ask_one()
        if n < 1:
            raise ConfigError(f"ask(n) needs n >= 1, got {n}")
        return [self._ask_one() for _ in range(n)]

    def tell(self, genotype: Hashable, result) -> None:
        """Report the result (EvalResult or objective value) of a genotype, asked or not."""
        genotype = self.space.parse(genotype)
        value = objective_of(result)
        try:
            self.pending.remove(genotype)
        except ValueError:
            pass  # an unsolicited tell (a warm start, or a user's own evaluation) is welcome
        self.history.append((genotype, value))
        self._observe(genotype, value)

    def run(self, evaluator, budget, batch: int = 1, executor=None, asynchronous: bool = False, callback=None):
        """Search until the budget is spent; returns a ``RunResult`` (see ``archsearch.strategies.budget``)."""
        return run_strategy(self, evaluator, budget, batch=batch, executor=executor,
                            asynchronous=asynchronous, callback=callback)

    def warm_start(self, genotypes: Iterable[Hashable]) -> None:
        """Propose these genotypes first (e.g. the top of a proxy-ranked pool)."""
        self._warm.extend(self.space.parse(g) for g in genotypes)

    @property
    def best(self) -> tuple[Hashable, float] | None:
        """The told genotype with the highest objective (first one on ties)."""
        if not self.history:
            return None
        return max(self.history, key=lambda item: item[1])

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        to_str = self.space.to_string
        state = {
            "name": self.name,
            "rng": self.rng.bit_generator.state,
            "history": [(to_str(g), v) for g, v in self.history],
            "pending": [to_str(g) for g in self.pending],
            "warm": [to_str(g) for g in self._warm],
        }
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"state of strategy '{state.get('name')}' cannot be loaded into '{self.name}'")
        parse = self.space.from_string
        self.rng.bit_generator.state = state["rng"]
        self.history = [(parse(g), float(v)) for g, v in state["history"]]
        self.pending = [parse(g) for g in state["pending"]]
        self._warm = deque(parse(g) for g in state["warm"])
        self._load_extra_state(state)

    # -- for subclasses ------------------------------------------------------------------------
    def _ask_one(self) -> Hashable:
        genotype = self._warm.popleft() if self._warm else self._propose()
        self.pending.append(genotype)
        return genotype

    @abstractmethod
    def _propose(self) -> Hashable:
        """The strategy's next genotype; ``self.pending`` holds those asked and not yet told."""

    def _observe(self, genotype: Hashable, value: float) -> None:
        """Learn from one told result (already appended to ``self.history``)."""

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass


def optional(name: str, module: str, attribute: str, package: str, extra: str):
    """Register ``name`` as a factory that imports ``module`` only when the strategy is built."""

    def factory(space, seed=None, **options):
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise ArchSearchError(
                f"strategy '{name}' needs the optional dependency '{package}' ({error}); "
                f"install it with: pip install 'archsearch[{extra}]'"
            ) from None
        return getattr(importlib.import_module(module), attribute)(space, seed=seed, **options)

    factory.__name__ = f"{name}_factory"
    factory.extra = extra
    STRATEGIES.register(name)(factory)
    return factory


def make_strategy(name: str, space, seed: int | None = None, **options):
    """Build a registered strategy: ``make_strategy("evolution", get_space("nb201"), seed=0)``."""
    if isinstance(space, str):
        space = get_space(space)
    return STRATEGIES.get(name)(space, seed=seed, **options)

"""Shared-weight validation accuracy: a cell scored by the supernet computing that cell alone, with the
weights trained for all of them; and the selector that keeps the best of cells drawn from what was learned.

ENAS' final choice (AutoDL-Projects exps/NAS-Bench-201-algos/ENAS.py:203-228, ``get_best_arch``, called with
``controller_num_samples`` 100 at :502): n cells drawn from the controller (repeats allowed), each scored on
the next search-valid batch with the supernet in eval mode, the first with the highest accuracy kept.
The same score is ENAS' reward (search/estimators.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from archsearch.errors import ConfigError
from archsearch.search.selectors.base import SELECTORS, Selector
from archsearch.spaces.supernet import OpWeights
from archsearch.utils.io import write_json_atomic


class FixedWeights(OpWeights):
    """Given one-hot op weights per alpha tensor: the supernet computes the one op of each edge."""

    hard = True

    def __init__(self, weights: dict[int, torch.Tensor]):
        self.weights = weights  # id(alpha) -> (edges, ops) one-hot

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return self.weights[id(alpha)]


def choice_weights(supernet, actions) -> dict[int, torch.Tensor]:
    """One-hot weights of one choice per decision for a supernet whose one alpha has a row per decision."""
    (alpha,) = supernet.named_arch_parameters().values()
    actions = torch.as_tensor(actions, device=alpha.device)
    return {id(alpha): torch.nn.functional.one_hot(actions, alpha.shape[-1]).to(alpha.dtype)}


@contextlib.contextmanager
def computing(supernet, actions) -> Iterator[None]:
    """Inside the block the supernet computes the cell of ``actions`` (a choice index per decision), in eval
    mode (ENAS.py:123, :206), whatever its relaxation; both restored after."""
    relaxation, training = supernet.relaxation, supernet.training
    supernet.set_relaxation(FixedWeights(choice_weights(supernet, actions)))
    supernet.eval()
    try:
        yield
    finally:
        supernet.set_relaxation(relaxation)
        supernet.train(training)


def shared_weight_logits(supernet, actions, x: torch.Tensor) -> torch.Tensor:
    """The supernet's logits on ``x`` computing only the cell of ``actions`` (no gradient)."""
    with computing(supernet, actions), torch.no_grad():
        return supernet(x)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy as a fraction (ENAS' reward: val_top1 / 100, ENAS.py:142-143)."""
    return float((logits.argmax(dim=-1) == y).float().mean())


def _cycle(batches) -> Iterator:
    while True:
        yield from batches()


@SELECTORS.register("shared_accuracy")
class SharedAccuracySelector(Selector):
    """n cells drawn from the relaxation's sampler, the first best by shared-weight accuracy, each on the
    next search-valid batch (``same_batch``: all on the search's fixed batch instead)."""

    def __init__(self, n: int = 100, same_batch: bool = False):  # ENAS.sh:47: --controller_num_samples 100
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n (cells to score) must be an integer >= 1, got {n!r}")
        self.n, self.same_batch = n, bool(same_batch)

    def check_space(self, space) -> None:
        if space.choice_shape is None:
            raise ConfigError(f"the shared_accuracy selector needs a space of one choice per decision; "
                              f"the {space.name} space is not")

    def select(self, view):
        sampler = view.relaxation.sampler(view)
        if sampler is None:
            raise ConfigError(f"the '{view.config.relaxation}' relaxation defines no distribution to draw cells "
                              "from; use selector=argmax")
        rng = np.random.default_rng(view.config.seed)
        batches = (iter(lambda: view.score_batch, None) if self.same_batch or view.valid_batches is None
                   else _cycle(view.valid_batches))
        scored = []
        for _ in range(self.n):
            genotype = view.space.parse(sampler(rng))
            x, y = next(batches)
            actions = view.space.to_choices(genotype)
            scored.append((genotype, accuracy(shared_weight_logits(view.supernet, actions, x), y)))
        best = int(np.argmax([acc for _, acc in scored]))  # the first of the best, as np.argmax in ENAS.py:226
        if view.out_dir is not None:
            write_json_atomic(view.out_dir / "selection.json", {
                "selector": "shared_accuracy", "candidates": len(scored),
                "scored": [{"genotype": view.space.to_string(g), "accuracy": a} for g, a in scored]})
        return scored[best][0]


__all__ = ["FixedWeights", "SharedAccuracySelector", "accuracy", "choice_weights", "computing",
           "shared_weight_logits"]

"""Progressive Neural Architecture Search (Liu et al., ECCV 2018), Algorithm 1, behind ask/tell.

    S_1 = every cell of one block; evaluate them all; fit the predictor pi on them
    for b = 2 .. B:
        S'_b = expand-cell(S_{b-1})            every way of adding block b to every kept cell
        S_b  = top-K(S'_b, pi(S'_b), K)        the K cells the predictor ranks highest
        evaluate S_b; refit pi on everything evaluated so far

The predictor is ``pnas_predictor.Ensemble`` (an LSTM or an MLP over the cell's tokens, 5 members, L1 loss
on accuracy); the mapping of blocks onto the space and the genotype a partial cell stands for are
``pnas_layout``'s (NAS-Bench-201: block = node, B = 3). The beam is expanded whole, as in Algorithm 1:
measured accuracies only train the predictor. A cell of S_b whose genotype is already known (a smaller
cell can complete to the same genotype as a larger one) keeps its measured value for the ranking and is
not evaluated again.

After step B the paper's search is over; with budget left we keep going (our extension): each round runs
the beam search from one block to B again on the refitted predictor alone (measured values replacing
predictions where known) and evaluates the K complete cells it ranks highest among those not yet evaluated;
once none is left, uniform samples. Asks come from the current step's queue; when it runs dry the next step is
planned from the results told so far, so a batch or asynchronous run plans on what it has.

Defaults: beam K = 32, not the paper's 256 (B = 5 blocks of its space, 1,160 cells trained): NAS-Bench-201
has 5 one-block cells and 125 expansions of each, so a 3-step run evaluates 5 + min(K, 125) + K cells, and
K = 32 spends 69 of the ~100 queries that the benchmark's 12,000 simulated seconds buy, leaving the rest to
further rounds of step 3 with a predictor trained on 69 cells (docs/pnas.md compares K).
"""

from __future__ import annotations

import math
from collections import deque

import torch

from archsearch.checks import integer, number
from archsearch.errors import ConfigError, UnknownNameError
from archsearch.strategies.base import STRATEGIES, Strategy, objective_of
from archsearch.strategies.pnas_layout import make_layout
from archsearch.strategies.pnas_predictor import PREDICTORS, Ensemble

TARGETS = ("accuracy", "minmax")


@STRATEGIES.register("pnas")
class PNAS(Strategy):
    name = "pnas"

    def __init__(self, space, seed: int | None = None, beam: int = 32, predictor: str = "lstm",
                 ensemble: int = 5, hidden: int = 100, embedding: int = 100, lr: float = 0.01, epochs: int = 20,
                 batch_size: int = 16, target: str = "accuracy", layout: str | None = None):
        super().__init__(space, seed)
        self.beam_size = integer(beam, "pnas beam", minimum=1, maximum=100_000)
        if predictor not in PREDICTORS:
            raise UnknownNameError("pnas predictor", predictor, PREDICTORS)
        if target not in TARGETS:
            raise UnknownNameError("pnas target", target, TARGETS)
        self.target = target
        self.layout = make_layout(space, layout)
        self.ensemble = Ensemble(
            predictor, self.layout.vocabulary, self.layout.width,
            members=integer(ensemble, "pnas ensemble", minimum=1, maximum=100),
            embedding=integer(embedding, "pnas embedding", minimum=1, maximum=4096),
            hidden=integer(hidden, "pnas hidden", minimum=1, maximum=4096),
            lr=number(lr, "pnas lr", positive=True), epochs=integer(epochs, "pnas epochs", minimum=1, maximum=10_000),
            batch_size=integer(batch_size, "pnas batch_size", minimum=1, maximum=1_000_000))
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.step = 0  # b of the cells being proposed; 0 before the first ask
        self.beam: list[tuple] = [()]  # S_b (S_0: the empty cell)
        self.queue: deque = deque()  # cells of the current step still to propose
        self.cells: dict = {}  # genotype -> the partial cell it was proposed for (the predictor's input)

    # -- ask / tell -----------------------------------------------------------------------------
    def _propose(self):
        while not self.queue:
            if not self._plan():
                return self._unseen_sample()
        prefix = self.queue.popleft()
        genotype = self.layout.complete(prefix)
        self.cells.setdefault(genotype, prefix)
        return genotype

    def _known(self) -> set:
        return {g for g, _ in self.history} | set(self.pending)

    def _plan(self) -> bool:
        """Queue the next step's cells; False when nothing new is left to propose."""
        known = self._known()
        if self.step < self.layout.depth:
            candidates = [c for p in self.beam for c in self.layout.expansions(p)]
            # step 1: every one-block cell is evaluated (Algorithm 1: S_1 = B_1, no predictor yet)
            chosen = candidates if self.step == 0 else self._top_k(candidates, self._fit())
            self.beam, self.step = chosen, self.step + 1
            self.queue.extend(c for c in chosen if self.layout.complete(c) not in known)
            return True
        # after step B: the beam search again on the refitted predictor alone, from one block to B; the K
        # complete cells it ranks highest among those not yet evaluated are the next round
        measured, beam = self._fit(), [()]
        for b in range(self.layout.depth):
            candidates = [c for p in beam for c in self.layout.expansions(p)]
            if b == self.layout.depth - 1:
                beam = self._top_k([c for c in candidates if self.layout.complete(c) not in known], measured)
            else:
                beam = candidates if b == 0 else self._top_k(candidates, measured)
        self.queue.extend(beam)
        return bool(beam)

    def _fit(self) -> dict:
        """Refit the ensemble from scratch on everything told; returns {genotype: target} of the told."""
        genotypes, targets = self._targets()
        if genotypes:
            cells = [self.cells[g] if g in self.cells else self.layout.prefix_of(g) for g in genotypes]
            self.ensemble.fit([self.layout.tokens(c) for c in cells], targets, self.generator)
        return dict(zip(genotypes, targets))

    def _top_k(self, candidates: list[tuple], measured: dict) -> list[tuple]:
        """The K candidates of highest predicted accuracy; a measured value replaces the prediction."""
        if not candidates:
            return []
        if measured:
            scores = self.ensemble.predict([self.layout.tokens(c) for c in candidates]).tolist()
        else:  # nothing told yet (every ask of the previous step still in flight): no ranking to use
            scores = torch.rand(len(candidates), generator=self.generator).tolist()
        for i, c in enumerate(candidates):
            scores[i] = measured.get(self.layout.complete(c), scores[i])
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])  # stable: ties keep expansion order
        return [candidates[i] for i in order[: self.beam_size]]

    def _targets(self) -> tuple[list, list[float]]:
        """The told genotypes and their objectives as the predictor's targets in [0, 1]."""
        values = [v for _, v in self.history]
        if self.target == "accuracy":
            scaled = [v / 100.0 if math.isfinite(v) else 0.0 for v in values]  # a failed run: accuracy 0
        else:  # min-max over what has been told
            finite = [v for v in values if math.isfinite(v)]
            low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
            span = high - low if high > low else 1.0
            scaled = [(v - low) / span if math.isfinite(v) else 0.0 for v in values]
        return [g for g, _ in self.history], scaled

    def tell(self, genotype, result) -> None:
        value = objective_of(result)
        if self.target == "accuracy" and math.isfinite(value) and not 0.0 <= value <= 100.0:
            raise ConfigError(f"pnas target='accuracy' reads objectives as percentages in 0..100, got {value:g}; "
                              f"use target='minmax' for other objectives")
        super().tell(genotype, result)

    def _unseen_sample(self):
        known = self._known()
        genotype = self.space.sample(self.rng)
        while genotype in known and len(known) < (self.space.size() or math.inf):
            genotype = self.space.sample(self.rng)
        return genotype

    # -- state ----------------------------------------------------------------------------------
    def _extra_state(self):
        to_str = self.space.to_string
        return {"step": self.step, "beam": [list(c) for c in self.beam],
                "queue": [list(c) for c in self.queue], "cells": {to_str(g): list(c) for g, c in self.cells.items()},
                "generator": self.generator.get_state()}

    def _load_extra_state(self, state):
        self.step = int(state["step"])
        self.beam = [tuple(c) for c in state["beam"]]
        self.queue = deque(tuple(c) for c in state["queue"])
        self.cells = {self.space.from_string(g): tuple(c) for g, c in state["cells"].items()}
        self.generator.set_state(state["generator"])

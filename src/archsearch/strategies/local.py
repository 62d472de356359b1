"""Local search, first improvement with random restarts (White, Nolen & Savani, UAI 2021,
"Local search is state of the art for neural architecture search benchmarks").

Start from a random genotype; evaluate its neighbours (one edge changed) in a random order and move to the
first one that beats it; at a local optimum (no neighbour better) restart from a new random genotype.
Genotypes already told are not asked again: their known value is used.
"""

from __future__ import annotations

import math

from archsearch.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("local")
class LocalSearch(Strategy):
    name = "local"

    def __init__(self, space, seed: int | None = None):
        super().__init__(space, seed)
        self.known: dict = {}  # genotype -> objective
        self.current = None  # (genotype, objective) of the point being improved
        self.queue: list = []  # its neighbours still to try, next last
        self.restarts = 0

    def _new_centre(self, genotype, value):
        self.current = (genotype, value)
        order = self.rng.permutation(len(neighbours := self.space.neighbours(genotype)))
        self.queue = [neighbours[int(i)] for i in order[::-1]]

    def _propose(self):
        in_flight = set(self.pending)
        while self.current is not None:
            while self.queue:
                candidate = self.queue.pop()
                if candidate in in_flight:
                    continue
                if candidate not in self.known:
                    return candidate
                if self.known[candidate] > self.current[1]:  # a known better neighbour: move without a query
                    self._new_centre(candidate, self.known[candidate])
                    break
            else:
                if any(g in self.space.neighbours(self.current[0]) for g in in_flight):
                    break  # neighbours still in flight may improve: explore from elsewhere meanwhile
                self.current, self.restarts = None, self.restarts + 1  # local optimum: restart
        genotype = self.space.sample(self.rng)
        while genotype in self.known or genotype in in_flight:
            genotype = self.space.sample(self.rng)
        return genotype

    def _observe(self, genotype, value):
        self.known[genotype] = max(value, self.known.get(genotype, -math.inf))
        if self.current is None or value > self.current[1]:
            self._new_centre(genotype, value)

    def _extra_state(self):
        s = self.space.to_string
        return {"known": [(s(g), v) for g, v in self.known.items()],
                "current": None if self.current is None else (s(self.current[0]), self.current[1]),
                "queue": [s(g) for g in self.queue], "restarts": self.restarts}

    def _load_extra_state(self, state):
        p = self.space.from_string
        self.known = {p(g): float(v) for g, v in state["known"]}
        self.current = None if state["current"] is None else (p(state["current"][0]), float(state["current"][1]))
        self.queue = [p(g) for g in state["queue"]]
        self.restarts = int(state["restarts"])

"""Regularized (aging) evolution, Real et al., AAAI 2019, Algorithm 1.

Defaults are the NAS-Bench-201 paper's runs (Dong & Yang 2020; AutoDL-Projects
scripts-search/NAS-Bench-201-algos/R-EA.sh): population 10, tournament (sample) size 3, mutation = one edge
changed to a different op. The tournament draws with replacement, as Algorithm 1 and the benchmark's code do.
The population is the ``population`` most recently told genotypes, so the oldest dies at each tell.
Asynchronous use (Real et al.'s parallel workers) needs nothing more: every ask mutates the current
population, whatever is still pending; the first ``population`` asks (told or in flight) are random.
"""

from __future__ import annotations

from collections import deque

from archsearch.errors import ConfigError
from archsearch.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    name = "evolution"

    def __init__(self, space, seed: int | None = None, population: int = 10, tournament: int = 3):
        super().__init__(space, seed)
        if population < 1 or not 1 <= tournament:
            raise ConfigError(f"evolution needs population >= 1 and tournament >= 1, got {population}, {tournament}")
        self.population_size, self.tournament = population, tournament
        self.population: deque = deque(maxlen=population)  # (genotype, objective), oldest first

    def _propose(self):
        # exactly `population` random founders, whatever is in flight; with workers all busy on founders,
        # a further ask stays random until one founder is told
        if len(self.population) + len(self.pending) < self.population_size or not self.population:
            return self.space.sample(self.rng)
        picks = self.rng.integers(len(self.population), size=self.tournament)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        return self.space.mutate(parent, self.rng)

    def _observe(self, genotype, value):
        self.population.append((genotype, value))  # maxlen: the oldest member dies

    def _extra_state(self):
        return {"population": [(self.space.to_string(g), v) for g, v in self.population]}

    def _load_extra_state(self, state):
        self.population = deque(((self.space.from_string(g), float(v)) for g, v in state["population"]),
                                maxlen=self.population_size)

"""Random search (Bergstra & Bengio 2012; Li & Talwalkar 2019 as a NAS baseline): uniform samples.

As in the NAS-Bench-201 baseline, samples are drawn with replacement, so a repeat is evaluated (and paid
for) again; ``unique=True`` skips genotypes already asked.
"""

from __future__ import annotations

from archsearch.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    name = "random"

    def __init__(self, space, seed: int | None = None, unique: bool = False):
        super().__init__(space, seed)
        self.unique = unique

    def _propose(self):
        genotype = self.space.sample(self.rng)
        if self.unique:
            seen = {g for g, _ in self.history} | set(self.pending)
            while genotype in seen:
                genotype = self.space.sample(self.rng)
        return genotype

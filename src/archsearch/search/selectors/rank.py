"""Sample-and-rank selectors: draw candidate genotypes, keep the one a training-free proxy ranks first.

- ``SampleAndRank``: candidates from the learned distribution (BaLeNAS-TF, Zhang et al., CVPR 2022:
  sample alpha ~ N(mu, sigma^2), argmax per edge; any relaxation may supply its own sampler).
- ``RandomAndRank``: candidates drawn uniformly from the space (the zero-cost NAS baseline of
  Abdelfattah et al., ICLR 2021).

Both draw ``n`` *distinct* genotypes: a sampler that keeps returning the same few (a peaked
distribution) is asked at most ``max_attempts`` times, and the ranking then holds fewer than ``n``.
Every candidate's network is initialised from the same seed, so scores are comparable across
candidates and reproducible across runs.

``sample_and_rank`` and ``random_and_rank`` are the selectors a search names: they score on the search's
fixed batch (SearchView.score_batch) and save the ranking with the run (``selection.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
import torch

from archsearch.errors import ArchSearchError, ConfigError
from archsearch.proxies import score
from archsearch.registry import Registry
from archsearch.search.selectors.base import SELECTORS, Selector
from archsearch.spaces.base import RandomSource, SearchSpace, as_rng

RANK_SELECTORS: Registry[type["RankSelector"]] = Registry("ranking selector")

Sampler = Callable[[np.random.Generator], Hashable]


@dataclass(frozen=True)
class Ranked:
    """One candidate and its proxy score (NaN scores rank last)."""

    genotype: Hashable
    arch: str
    score: float


class RankSelector:
    """Draw distinct candidates, score each with ``proxy`` on one batch, return (best, ranking)."""

    def __init__(self, proxy: str = "synflow", n: int = 100, seed: int = 0, max_attempts: int | None = None,
                 num_classes: int = 10, network_options: dict | None = None, device=None):
        from archsearch.proxies import PROXIES

        PROXIES.get(proxy)  # fail early on an unknown proxy name
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n (number of candidates) must be a positive integer, got {n!r}")
        self.proxy, self.n, self.seed = proxy, n, int(seed)
        # 100 draws per wanted candidate: enough for any distribution that puts 1% on new genotypes.
        self.max_attempts = max_attempts if max_attempts is not None else 100 * n
        self.num_classes = num_classes
        self.network_options = dict(network_options or {})
        self.device = device

    def default_sampler(self, space: SearchSpace) -> Sampler | None:
        return None

    def candidates(self, space: SearchSpace, sampler: Sampler, rng: RandomSource = None) -> list[Hashable]:
        """Up to ``n`` distinct genotypes in the order drawn (distinct by their text form)."""
        rng = as_rng(self.seed if rng is None else rng)
        wanted = self.n if space.size() is None else min(self.n, space.size())
        seen: dict[str, Hashable] = {}
        for _ in range(self.max_attempts):
            if len(seen) >= wanted:
                break
            genotype = space.parse(sampler(rng))
            seen.setdefault(space.to_string(genotype), genotype)
        return list(seen.values())

    def rank(self, space: SearchSpace, genotypes: list[Hashable], batch_x: torch.Tensor,
             batch_y: torch.Tensor) -> list[Ranked]:
        ranked = []
        for genotype in genotypes:
            value = score(self.proxy, lambda g=genotype: space.network(g, self.num_classes, **self.network_options),
                          batch_x, batch_y, seed=self.seed, device=self.device)
            ranked.append(Ranked(genotype, space.to_string(genotype), value))
        # Highest score first; NaN (an undefined score) last; ties keep the order drawn.
        return sorted(ranked, key=lambda r: (np.isnan(r.score), -r.score if not np.isnan(r.score) else 0.0))

    def select(self, space: SearchSpace, batch_x: torch.Tensor, batch_y: torch.Tensor,
               sampler: Sampler | None = None, rng: RandomSource = None) -> tuple[Hashable, list[Ranked]]:
        sampler = sampler if sampler is not None else self.default_sampler(space)
        if sampler is None:
            raise ConfigError(f"{type(self).__name__} needs a sampler of genotypes (a callable rng -> genotype)")
        genotypes = self.candidates(space, sampler, rng)
        if not genotypes:
            raise ArchSearchError("the sampler produced no genotype to rank")
        ranking = self.rank(space, genotypes, batch_x, batch_y)
        return ranking[0].genotype, ranking


@RANK_SELECTORS.register("sample_and_rank")
class SampleAndRank(RankSelector):
    """Candidates from a learned distribution: pass its sampler to ``select`` (BaLeNAS-TF)."""


@RANK_SELECTORS.register("random_and_rank")
class RandomAndRank(RankSelector):
    """Candidates drawn uniformly from the space (``space.sample``): the zero-cost NAS baseline."""

    def default_sampler(self, space: SearchSpace) -> Sampler:
        return space.sample


def sample_and_rank(proxy: str, n: int, space: SearchSpace, sampler: Sampler, batch_x: torch.Tensor,
                    batch_y: torch.Tensor, seed: int = 0, **options) -> tuple[Hashable, list[Ranked]]:
    """Best of ``n`` distinct genotypes drawn by ``sampler``, by ``proxy`` (see ``SampleAndRank``)."""
    return SampleAndRank(proxy, n, seed, **options).select(space, batch_x, batch_y, sampler)


def random_and_rank(proxy: str, n: int, space: SearchSpace, batch_x: torch.Tensor, batch_y: torch.Tensor,
                    seed: int = 0, **options) -> tuple[Hashable, list[Ranked]]:
    """Best of ``n`` distinct uniformly drawn genotypes, by ``proxy`` (see ``RandomAndRank``)."""
    return RandomAndRank(proxy, n, seed, **options).select(space, batch_x, batch_y)


# ---- the selectors of a search --------------------------------------------------------------------
class _RankingSelector(Selector):
    """From the search to a RankSelector: candidates are scored with a training-free proxy on one fixed
    batch of the search's data; the ranking is saved with the run."""

    rank_name = ""

    def __init__(self, proxy: str = "synflow", n: int = 100):
        from archsearch.proxies import PROXIES

        PROXIES.get(proxy)  # an unknown proxy fails before the search, not after it
        if n < 1:
            raise ConfigError(f"n (candidates to rank) must be >= 1, got {n}")
        self.proxy, self.n = proxy, n

    def select(self, view):
        from archsearch.proxies import without_auxiliary
        from archsearch.utils.io import write_json_atomic

        # the candidates are scored as the proxy study scores them: a DARTS network's auxiliary head would
        # make its training-mode output a pair, which no proxy reads
        options = {"in_channels": view.in_channels, **without_auxiliary(view.space)}
        selector = RANK_SELECTORS.get(self.rank_name)(
            self.proxy, self.n, seed=view.config.seed, num_classes=view.num_classes, network_options=options,
            device=view.device)
        x, y = view.score_batch
        genotype, ranking = selector.select(view.space, x, y, self.sampler(view))
        if view.out_dir is not None:
            write_json_atomic(view.out_dir / "selection.json", {
                "selector": self.rank_name, "proxy": self.proxy, "candidates": len(ranking),
                "ranking": [{"genotype": r.arch, "score": r.score} for r in ranking]})
        return genotype

    def sampler(self, view) -> Sampler | None:
        return None


@SELECTORS.register("sample_and_rank")
class SampleAndRankSelector(_RankingSelector):
    """n distinct genotypes drawn from the learned distribution, the best by the proxy (BaLeNAS-TF)."""

    rank_name = "sample_and_rank"

    def sampler(self, view) -> Sampler:
        sampler = view.relaxation.sampler(view)
        if sampler is None:
            raise ConfigError(f"the '{view.config.relaxation}' relaxation defines no distribution to sample "
                              "genotypes from; use selector=random_and_rank or selector=argmax")
        return sampler


@SELECTORS.register("random_and_rank")
class RandomAndRankSelector(_RankingSelector):
    """n distinct genotypes drawn uniformly from the space, the best by the proxy (zero-cost baseline)."""

    rank_name = "random_and_rank"

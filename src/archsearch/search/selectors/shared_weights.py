"""One-shot ranking: candidates scored by their accuracy with the supernet's shared weights (on a language
model, by minus their valid perplexity: the task's ``score``, search/tasks.py).

A candidate genotype is run through the supernet with only its own path computed (each edge's chosen
op, the others not at all: the one-hot ``FixedPath``), in eval mode, on batches of the search-valid split
without augmentation; its score is the top-1 accuracy in % (D-X-Y/AutoDL-Projects
``exps/NAS-Bench-201-algos/RANDOM-NAS.py:107-131`` ``search_find_best`` and ``SETN.py:117-140``
``get_best_arch``: ``network.eval()``, one batch of the valid loader per candidate, argmax of top-1).

Candidates (``candidates``):

- ``uniform``: drawn uniformly from the space (RSPS: ``random_genotype``, ``RANDOM-NAS.py:114``);
- ``top``: the n genotypes most probable under the relaxation's weights, log p(g) = sum_e log w_{e, g_e}
  over every edge (SETN's templates as xautodl takes them, ``search_model_setn.py:132-150``
  ``return_topK``; needs a space that enumerates its genotypes);
- ``sample``: drawn from the learned distribution (the SETN paper's Sec. 3.2 wording; the relaxation's
  ``sampler``).

Batches: by default candidate i is scored on the i-th batch of a shuffled pass over the search-valid
split, the passes repeating when they run out (the reference's ``next(loader_iter)``); ``same_batches``
scores every candidate on the same first batches, a like-for-like comparison. ``batches`` per candidate.

``shared_weight_accuracy`` and ``fixed_path`` are the reusable parts (any one-shot method's ranking).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Hashable, Iterable, Iterator

import torch

from archsearch.errors import ConfigError, shown
from archsearch.search.selectors.base import SELECTORS, Selector
from archsearch.search.selectors.rank import Ranked
from archsearch.search.tasks import top1_percent
from archsearch.spaces.base import as_rng
from archsearch.spaces.supernet import OpWeights

CANDIDATES = ("uniform", "top", "sample")


def path_weights(space, supernet, genotype) -> dict[str, torch.Tensor]:
    """Per cell type, the one-hot (edges, alpha columns) op weights of ``genotype``'s path: its op on each
    edge it keeps, ``none`` (computing nothing) on every other (``Supernet.path_weights``)."""
    edges = space.selected_edges(genotype)
    alphas = supernet.named_arch_parameters()
    if edges is None and space.choice_shape is not None and len(alphas) == 1 and supernet.alpha_columns is None:
        # a space whose decisions are the rows of one alpha (enas-macro: ops and skip bits): its choices
        ((name, alpha),) = alphas.items()
        choices = torch.tensor(space.to_choices(genotype), device=alpha.device)
        if choices.numel() != alpha.shape[0]:
            raise ConfigError(f"a genotype of {choices.numel()} decisions cannot run on a supernet of "
                              f"{alpha.shape[0]} (a space instance of another size drew it: with a supernet of "
                              f"another size than the space's default, draw candidates from the relaxation)")
        return {name: torch.nn.functional.one_hot(choices, alpha.shape[1]).to(torch.float32)}
    if edges is None:
        raise ConfigError(f"the {space.name} space does not map its genotypes to alpha rows: no path to score")
    try:
        return supernet.path_weights(edges)
    except ConfigError as error:
        raise ConfigError(f"{error}: {space.to_string(genotype)} cannot be run on it") from None


class FixedPath(OpWeights):
    """One fixed one-hot path (``hard``: the supernet computes the chosen op of each edge only)."""

    hard = True

    def __init__(self, supernet, weights: dict[str, torch.Tensor]):
        self._by_alpha = {id(alpha): weights[name] for name, alpha in supernet.named_arch_parameters().items()}

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return self._by_alpha[id(alpha)]


@contextlib.contextmanager
def fixed_path(supernet, space, genotype) -> Iterator[None]:
    """Inside the block the supernet computes ``genotype``'s path alone; its relaxation is restored after."""
    previous = supernet.relaxation
    supernet.set_relaxation(FixedPath(supernet, path_weights(space, supernet, genotype)))
    try:
        yield
    finally:
        supernet.set_relaxation(previous)


@torch.no_grad()
def shared_weight_accuracy(supernet, space, genotype, batches: Iterable, score=top1_percent) -> float:
    """``score(supernet, batches)`` of ``genotype`` with the supernet's weights, in eval mode: top-1
    accuracy (%) by default, a task's own score where handed (``SearchTask.score``: minus a language
    model's perplexity)."""
    was_training = supernet.training
    supernet.eval()
    try:
        with fixed_path(supernet, space, genotype):
            return score(supernet, batches)
    finally:
        supernet.train(was_training)


def check_enumerable(space) -> None:
    if space.size() is None or space.size() > 10**6:
        raise ConfigError(f"candidates=top enumerates the space; the {space.name} space is too large: use "
                          "candidates=sample or uniform")


def top_genotypes(space, weights: dict[str, torch.Tensor], n: int) -> list[Hashable]:
    """The n genotypes of highest log p(g) = sum over edges of log w[e, g_e] (ties: enumeration order)."""
    check_enumerable(space)
    logs = {name: torch.log(torch.as_tensor(w).double()) for name, w in weights.items()}
    index = {op: k for k, op in enumerate(space.ops)}

    def log_p(genotype) -> float:
        edges = space.selected_edges(genotype)
        return sum(float(logs[name][row, index[op]]) for name, rows in edges.items() for row, op in rows)

    scored = sorted(((log_p(g), i, g) for i, g in enumerate(space.enumerate())), key=lambda t: (-t[0], t[1]))
    return [g for _, _, g in scored[:n]]


@SELECTORS.register("shared-weights")
class SharedWeightSelector(Selector):
    """n candidates (``candidates``: uniform | top | sample), the best by shared-weight validation accuracy."""

    def __init__(self, candidates: str = "uniform", n: int = 100, batch_size: int = 512, batches: int = 1,
                 same_batches: bool = False):
        # xautodl: --select_num 100 (RANDOM-NAS.sh:43, SETN.sh:44); the valid loader's batch is the
        # config's test_batch_size 512 (configs/nas-benchmark/algos/RANDOM.config:13, SETN.config:13)
        if candidates not in CANDIDATES:
            raise ConfigError(f"candidates must be one of {', '.join(CANDIDATES)}, got {shown(candidates)}")
        for key, value in (("n", n), ("batch_size", batch_size), ("batches", batches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {shown(value)}")
        self.candidates, self.n, self.batch_size, self.batches = candidates, n, batch_size, batches
        self.same_batches = bool(same_batches)

    def check_space(self, space) -> None:
        if self.candidates == "top":
            check_enumerable(space)

    def draw(self, view) -> list[Hashable]:
        space = view.space
        if self.candidates == "top":
            return top_genotypes(space, view.deterministic_weights(), self.n)
        sampler = space.sample if self.candidates == "uniform" else view.relaxation.sampler(view)
        if sampler is None:
            raise ConfigError(f"the {view.config.relaxation} relaxation defines no distribution to sample "
                              "candidates from: use candidates=uniform or top")
        return distinct_draws(space, sampler, self.n, view.config.seed)

    def rank(self, view, genotypes: list[Hashable]) -> list[Ranked]:
        if view.valid_batches is None:
            raise ConfigError("the shared-weights selector needs the search-valid batches (SearchView.valid_batches)")
        loader = view.valid_batches(self.batch_size)
        if self.same_batches:
            fixed = list(itertools.islice(loader, self.batches))

            def next_batches():
                return fixed
        else:
            stream = _endless(loader)

            def next_batches():
                return [next(stream) for _ in range(self.batches)]
        space, supernet = view.space, view.supernet
        score = top1_percent if view.score is None else view.score  # the task's (a language model's: -ppl)
        ranked = [Ranked(g, space.to_string(g), shared_weight_accuracy(supernet, space, g, next_batches(), score))
                  for g in genotypes]
        return sorted(ranked, key=lambda r: -r.score)  # stable: ties keep the order drawn (np.argmax's first)

    def select(self, view):
        from archsearch.utils.io import write_json_atomic

        ranking = self.rank(view, self.draw(view))
        if view.out_dir is not None:
            write_json_atomic(view.out_dir / "selection.json", {
                "selector": "shared-weights", "candidates": self.candidates, "proxy": view.score_name,
                "batch_size": self.batch_size, "batches": self.batches, "same_batches": self.same_batches,
                "ranking": [{"genotype": r.arch, "score": r.score} for r in ranking]})
        return ranking[0].genotype


def distinct_draws(space, sampler, n: int, seed: int) -> list[Hashable]:
    """Up to n distinct genotypes in the order drawn, 100 draws per wanted one at most (a peaked sampler
    yields fewer). The reference draws with replacement; a repeat would only be scored twice."""
    rng, seen = as_rng(seed), {}
    wanted = n if space.size() is None else min(n, space.size())
    for _ in range(100 * n):
        if len(seen) >= wanted:
            break
        genotype = space.parse(sampler(rng))
        seen.setdefault(space.to_string(genotype), genotype)
    return list(seen.values())


def _endless(loader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of successive shuffled passes (each pass moves the loader's epoch on)."""
    while True:
        yield from loader

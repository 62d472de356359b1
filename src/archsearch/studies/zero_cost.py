"""The zero-cost NAS baseline: draw n random architectures, keep a proxy's favourite, report its test
accuracy, mean and std over seeds (BaLeNAS Table 2 compares against it).

Every architecture is scored on one unaugmented batch from one initial seed, so a score belongs to an
architecture and each is scored once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from archsearch.checks import integer
from archsearch.checks import seed as check_seed
from archsearch.errors import ConfigError
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS
from archsearch.proxies import PROXIES
from archsearch.studies.proxy_scores import score_architectures
from archsearch.spaces.base import SearchSpace
from archsearch.utils.io import write_json_atomic, write_text_atomic

BENCH_DATASETS = NB201_DATASETS


def sample_sizes(samples: Sequence[int], space: SearchSpace) -> list[int]:
    """The distinct sample sizes, sorted, each an integer from 1 to the size of the space (a draw of more
    distinct cells than the space holds would never end)."""
    sizes = sorted({integer(n, "a sample size", minimum=1, maximum=space.size()) for n in samples})
    if not sizes:
        raise ConfigError("zero-cost needs at least one sample size, e.g. --samples 10,50,100")
    return sizes


def zero_cost_baseline(space: SearchSpace, proxy: str, samples: Sequence[int], seeds: Sequence[int],
                       batch_x: torch.Tensor, batch_y: torch.Tensor, init_seed: int = 0, num_classes: int = 10,
                       network_options: dict | None = None, device=None,
                       progress: Callable[[int, int], None] | None = None, workers: int = 1,
                       ray_address: str | None = None) -> dict:
    """For each seed, draw max(samples) distinct random cells (the first n of them are the size-n sample),
    keep the best by ``proxy``, and look up its test accuracy; mean and std over seeds per n.

    Networks are initialised from ``init_seed`` whatever the seed of the draw, so each cell is scored once
    (``workers`` and ``ray_address``: as ``score_architectures``).
    """
    from archsearch.groundtruth.nb201 import NB201Table

    PROXIES.get(proxy)
    samples = sample_sizes(samples, space)
    seeds = [check_seed(seed) for seed in seeds]
    if not seeds:
        raise ConfigError("zero-cost needs at least one seed")
    table = NB201Table.load()
    options = dict(network_options or {})
    cache: dict[str, float] = {}
    draws = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        picked, seen = [], set()
        for _ in range(100 * samples[-1]):
            if len(picked) == samples[-1]:
                break
            genotype = space.sample(rng)
            text = space.to_string(genotype)
            if text not in seen:
                seen.add(text)
                picked.append(genotype)
        draws[seed] = picked
    todo = list({space.to_string(g): g for picked in draws.values() for g in picked}.values())
    rows = score_architectures(space, todo, [proxy], batch_x, batch_y, seed=init_seed, num_classes=num_classes,
                               network_options=options, device=device, progress=progress, workers=workers,
                               ray_address=ray_address)
    cache.update((row["arch"], row[proxy]) for row in rows)

    def rank_key(text: str) -> float:
        value = cache[text]
        return -math.inf if math.isnan(value) else value

    result = {"proxy": proxy, "seeds": list(seeds), "init_seed": init_seed, "samples": {}}
    for n in samples:
        per_seed = []
        for seed in seeds:
            texts = [space.to_string(g) for g in draws[seed][:n]]
            best = max(texts, key=rank_key)  # the first drawn wins a tie
            per_seed.append({"seed": seed, "arch": best, "score": cache[best],
                             **{d: table.accuracy(best, d, "test", 200) for d in BENCH_DATASETS}})
        summary = {}
        for d in BENCH_DATASETS:
            acc = np.array([r[d] for r in per_seed])
            summary[d] = {"mean": float(acc.mean()), "std": float(acc.std())}
        result["samples"][str(n)] = {"test_accuracy": summary, "runs": per_seed}
    result["architectures_scored"] = len(cache)
    return result


def save_zero_cost(result: dict, out: Path) -> None:
    """``zero_cost.json`` (the whole result) and ``zero_cost.csv`` (mean and std per sample size, dataset)."""
    write_json_atomic(out / "zero_cost.json", result)
    lines = ["samples,dataset,mean,std"]
    for n, entry in result["samples"].items():
        for d, s in entry["test_accuracy"].items():
            lines.append(f"{n},{d},{s['mean']:.4f},{s['std']:.4f}")
    write_text_atomic(out / "zero_cost.csv", "\n".join(lines) + "\n")

"""Proxy scores of architectures and their rank correlations with NAS-Bench-201's ground truth."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from archsearch.checks import integer
from archsearch.errors import ConfigError, shown
from archsearch.proxies import PROXIES, check_path, score_all
from archsearch.runtime import resolve_device
from archsearch.spaces.base import SearchSpace
from archsearch.studies.pool import check_reachable, imap_ordered, make_pool, torch_threads, usable_cpus

#: the proxies of the zero-cost study, in its table's order, then the two size baselines
DEFAULT_PROXIES = ("synflow", "jacob_cov", "snip", "grad_norm", "grasp", "fisher", "nwot", "params", "flops")
#: ground truth the correlations are taken against: (key, dataset, split), all after 200 epochs. The zero-cost
#: code correlates CIFAR-10 with the test accuracy of the ``cifar10-valid`` runs (trained on 25k images),
#: which the table lacks; "cifar10-valid" here is the validation accuracy of those same runs.
TARGETS = (("cifar10", "cifar10", "test"), ("cifar10-valid", "cifar10", "valid"),
           ("cifar100", "cifar100", "test"), ("ImageNet16-120", "ImageNet16-120", "test"))
#: baselines that measure the network's size: the zero-cost study takes them from the benchmark, so they are
#: counted on the benchmark's network whatever network the other proxies score
SIZE_BASELINES = frozenset({"params", "flops"})


@dataclass(frozen=True)
class CellJob:
    """Everything scoring one architecture reads, as plain values: a worker process builds the network."""

    space: SearchSpace
    genotype: Hashable
    groups: tuple[tuple[tuple[str, ...], dict], ...]  # (proxies, network options): one score_all each
    x: torch.Tensor
    y: torch.Tensor
    seed: int
    num_classes: int
    device: torch.device | str | None
    path: str


def score_cell(job: CellJob) -> tuple[dict[str, float], float]:
    """The scores of one architecture and the seconds they took."""
    start = time.perf_counter()
    values: dict[str, float] = {}
    for names, options in job.groups:
        if names:
            source = functools.partial(job.space.network, job.genotype, job.num_classes, **options)
            values.update(score_all(names, source, job.x, job.y, seed=job.seed, device=job.device, path=job.path))
    return values, time.perf_counter() - start


def score_architectures(space: SearchSpace, genotypes: Sequence[Hashable], proxies: Sequence[str],
                        batch_x: torch.Tensor | None, batch_y: torch.Tensor | None, seed: int = 0,
                        num_classes: int = 10, network_options: dict | None = None, device=None,
                        progress: Callable[[int, int], None] | None = None,
                        batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
                        size_network_options: dict | None = None, path: str = "fast", workers: int = 1,
                        ray_address: str | None = None) -> list[dict]:
    """One row per architecture: arch, index (where the space has a benchmark index), each proxy, seconds.

    By default every architecture is scored on ``batch_x, batch_y`` from initial weights drawn with ``seed``.
    With ``batches``, architecture i is scored on ``batches(i)`` from weights drawn with ``seed + i``: the
    zero-cost code's protocol, where each network is drawn in turn from one seeded generator and sees the
    next batch of the training loader (nasbench2_pred.py). ``size_network_options``, where given, are the
    network options of the size baselines (``SIZE_BASELINES``) instead of ``network_options``. ``path`` is
    ``score_all``'s: "fast" (shared passes) or "reference" (a copy per pass); the scores are the same.

    ``workers`` > 1 scores that many architectures at a time, each in a worker process with one torch
    thread (``ray_address``: as Ray tasks instead); this process draws the batches, in order. A cell's
    scores are those of a one-thread run in this process, bit for bit: the workers run the same
    computation, and a cell depends only on its genotype, batch and seed (the thread count, by contrast,
    changes the convolutions' rounding). With Ray, ``workers`` is the number of tasks in flight. One cell's
    small convolutions keep few threads busy: workers are for machines with many cores and for clusters (on
    two cores they score no faster than two threads, docs/performance.md).
    """
    for name in proxies:
        PROXIES.get(name)
    check_path(path)
    if batches is None and (batch_x is None or batch_y is None):
        raise ConfigError("score_architectures needs batch_x and batch_y, or batches")
    workers = check_scoring_workers(workers, ray_address, device)
    pool = _scoring_pool(workers, ray_address, len(genotypes))
    options = dict(network_options or {})
    groups = [(tuple(proxies), options)]
    if size_network_options is not None:
        groups = [(tuple(p for p in proxies if p not in SIZE_BASELINES), options),
                  (tuple(p for p in proxies if p in SIZE_BASELINES), dict(size_network_options))]
    drawing: list[float] = []

    def jobs():
        for i, genotype in enumerate(genotypes):
            start = time.perf_counter()
            x, y = (batch_x, batch_y) if batches is None else batches(i)
            drawing.append(time.perf_counter() - start)
            yield CellJob(space, genotype, tuple(groups), x, y, seed if batches is None else seed + i, num_classes,
                          device, path)

    rows = []
    window = 2 * workers  # a job queued behind each running one, so that no worker waits for a batch
    # where workers were asked for but one cell leaves nothing to share, it is scored here as a worker
    # would score it: on one thread, so that its scores do not depend on how many cells came with it
    alone = torch_threads(1) if pool is None and workers > 1 else contextlib.nullcontext()
    with alone:
        for i, (values, seconds) in enumerate(imap_ordered(score_cell, jobs(), pool, window)):
            genotype = genotypes[i]
            row = {"arch": space.to_string(genotype), "index": _index(space, genotype)}
            row.update({name: values[name] for name in proxies})
            row["seconds"] = drawing[i] + seconds
            rows.append(row)
            if progress is not None:
                progress(i + 1, len(genotypes))
    return rows


def check_scoring_workers(workers, ray_address: str | None = None, device=None) -> int:
    """``workers`` as an int, refused where it cannot run: below 1, more local workers than usable CPUs,
    workers on an accelerator (one process drives it); a Ray address that does not answer."""
    workers = integer(workers, "workers", minimum=1)
    if ray_address is None and workers > usable_cpus():
        raise ConfigError(f"workers {workers} is more than the {usable_cpus()} CPUs this process may use: each "
                          "worker scores on one core, and more would only share them")
    if (workers > 1 or ray_address is not None) and device is not None and resolve_device(device).type != "cpu":
        raise ConfigError(f"scoring workers run on CPU cores; on {shown(str(device))} score with one worker")
    check_reachable(ray_address)
    return workers


def _scoring_pool(workers: int, ray_address: str | None, count: int):
    """Worker processes (or Ray) for ``workers`` > 1, None to score in this process."""
    if ray_address is not None:
        return make_pool(workers, ray_address, "process")
    return make_pool(min(workers, count), None, "process") if workers > 1 and count > 1 else None


def _index(space: SearchSpace, genotype) -> int | None:
    index = getattr(space, "index", None)
    return None if index is None else int(index(genotype))


def proxy_correlations(rows: Sequence[dict], proxies: Sequence[str], table=None) -> dict:
    """{proxy: {target: {"spearman", "kendall", "n"}}} against the 200-epoch accuracies of ``TARGETS``:
    test accuracy on cifar10, cifar100 and ImageNet16-120, and "cifar10-valid", the validation accuracy of
    the CIFAR-10 runs trained on half the training set.

    Architectures whose score is NaN (jacob_cov of a cell cut off from its input) are left out of that
    proxy's correlation, as the zero-cost code's ``spearmanr(..., nan_policy='omit')``; ``n`` says how many
    were used. Infinite scores are kept, ranked at the end they lie. Coefficients keep their sign (that code
    reports their absolute values).
    """
    from scipy import stats

    from archsearch.groundtruth.nb201 import NB201Table

    table = table if table is not None else NB201Table.load()
    accuracy = {key: np.array([table.accuracy(r["arch"], dataset, split, 200) for r in rows])
                for key, dataset, split in TARGETS}
    out = {}
    for name in proxies:
        values = np.array([r[name] for r in rows], dtype=np.float64)
        out[name] = {}
        for dataset in accuracy:
            keep = ~np.isnan(values) & np.isfinite(accuracy[dataset])
            if keep.sum() < 3:
                out[name][dataset] = {"spearman": math.nan, "kendall": math.nan, "n": int(keep.sum())}
                continue
            rho = stats.spearmanr(values[keep], accuracy[dataset][keep])[0]
            tau = stats.kendalltau(values[keep], accuracy[dataset][keep])[0]
            out[name][dataset] = {"spearman": float(rho), "kendall": float(tau), "n": int(keep.sum())}
    return out


def rows_to_csv(rows: Sequence[dict], proxies: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["arch", "index", *proxies, "seconds"])
    for r in rows:
        writer.writerow([r["arch"], "" if r["index"] is None else r["index"],
                         *(repr(float(r[p])) for p in proxies), f"{r['seconds']:.4f}"])
    return buffer.getvalue()

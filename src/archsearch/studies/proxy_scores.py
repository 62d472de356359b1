"""Proxy scores of architectures and their rank correlations with NAS-Bench-201's ground truth."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch

from archsearch.errors import ConfigError
from archsearch.proxies import PROXIES, check_path, score_all
from archsearch.spaces.base import SearchSpace

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


def score_architectures(space: SearchSpace, genotypes: Sequence[Hashable], proxies: Sequence[str],
                        batch_x: torch.Tensor | None, batch_y: torch.Tensor | None, seed: int = 0,
                        num_classes: int = 10, network_options: dict | None = None, device=None,
                        progress: Callable[[int, int], None] | None = None,
                        batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
                        size_network_options: dict | None = None, path: str = "fast") -> list[dict]:
    """One row per architecture: arch, index (where the space has a benchmark index), each proxy, seconds.

    By default every architecture is scored on ``batch_x, batch_y`` from initial weights drawn with ``seed``.
    With ``batches``, architecture i is scored on ``batches(i)`` from weights drawn with ``seed + i``: the
    zero-cost code's protocol, where each network is drawn in turn from one seeded generator and sees the
    next batch of the training loader (nasbench2_pred.py). ``size_network_options``, where given, are the
    network options of the size baselines (``SIZE_BASELINES``) instead of ``network_options``. ``path`` is
    ``score_all``'s: "fast" (shared passes) or "reference" (a copy per pass); the scores are the same.
    """
    for name in proxies:
        PROXIES.get(name)
    check_path(path)
    if batches is None and (batch_x is None or batch_y is None):
        raise ConfigError("score_architectures needs batch_x and batch_y, or batches")
    options = dict(network_options or {})
    groups = [(list(proxies), options)]
    if size_network_options is not None:
        groups = [([p for p in proxies if p not in SIZE_BASELINES], options),
                  ([p for p in proxies if p in SIZE_BASELINES], dict(size_network_options))]
    rows = []
    for i, genotype in enumerate(genotypes):
        start = time.perf_counter()
        x, y = (batch_x, batch_y) if batches is None else batches(i)
        values = {}
        for names, opts in groups:
            if names:
                values.update(score_all(names, lambda g=genotype, o=opts: space.network(g, num_classes, **o), x, y,
                                        seed=seed if batches is None else seed + i, device=device, path=path))
        values = {name: values[name] for name in proxies}
        row = {"arch": space.to_string(genotype), "index": _index(space, genotype)}
        row.update(values)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(genotypes))
    return rows


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

"""The proxy study: score architectures with training-free proxies and correlate the scores with the
NAS-Bench-201 ground truth (200-epoch test accuracy), as Abdelfattah et al. (ICLR 2021) do.

It follows the zero-cost code (SamsungLabs/zero-cost-nas, nasbench2_pred.py) by default: its NAS-Bench-201
model (cells without affine BatchNorm), and for each architecture in turn the next batch of 64 images of a
shuffled, augmented (crop and flip), normalised training loader and a network drawn afresh
(``draws="per-arch"``). ``draws="shared"`` uses one unaugmented batch and one initial seed for every
architecture instead, so that a score belongs to an architecture and can be cached.

Outputs in ``out``: ``scores.csv``, ``correlations.json`` and (nb201) one ``scatter_<proxy>.png`` per proxy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from archsearch.spaces.base import SearchSpace
from archsearch.studies.proxy_data import BATCH_SIZE, batch_for, loader_batches, needs_data, training_loader
from archsearch.proxies import without_auxiliary
from archsearch.studies.proxy_scores import proxy_correlations, rows_to_csv, score_architectures
from archsearch.utils.io import write_json_atomic, write_text_atomic

DRAWS = ("per-arch", "shared")
NETWORKS = ("zero-cost", "benchmark")
#: ``network_options`` of the zero-cost code's NB201 model (foresight/models/nasbench2.py): its cells are
#: search cells built with affine=False, track_running_stats=False and masked to the genotype's ops
ZERO_COST_NB201_NETWORK = {"affine": False, "track_running_stats": False}


def sample_architectures(space: SearchSpace, count: int, seed: int) -> list:
    """``count`` distinct architectures drawn uniformly, in the order drawn."""
    rng = np.random.default_rng(seed)
    picked: dict[str, Hashable] = {}
    while len(picked) < count:
        genotype = space.sample(rng)
        picked.setdefault(space.to_string(genotype), genotype)
    return list(picked.values())


def scatter_plots(rows: Sequence[dict], proxies: Sequence[str], correlations: dict, out_dir: Path,
                  dataset: str = "cifar10") -> list[Path]:
    """One PNG per proxy: score against the 200-epoch test accuracy."""
    # matplotlib takes a second to import: only when a figure is drawn
    from archsearch.groundtruth.nb201 import NB201Table
    from archsearch.report.png import save_png
    from archsearch.studies.figures import scatter_figure

    table = NB201Table.load()
    accuracy = np.array([table.accuracy(r["arch"], dataset, "test", 200) for r in rows])
    paths = []
    for name in proxies:
        values = np.array([r[name] for r in rows], dtype=np.float64)
        spearman = correlations.get(name, {}).get(dataset, {}).get("spearman", math.nan)
        path = out_dir / f"scatter_{name}.png"
        save_png(scatter_figure(name, values, accuracy, spearman, dataset), path)
        paths.append(path)
    return paths


def run_proxy_study(space: SearchSpace, genotypes: Sequence[Hashable], proxies: Sequence[str], out: Path, *,
                    data: str = "cifar10", data_dir=None, batch_size: int = BATCH_SIZE, seed: int = 0,
                    draws: str = "per-arch", network: str = "zero-cost", device="cpu", quiet: bool = True,
                    progress: Callable[[int, int], None] | None = None, workers: int = 1,
                    ray_address: str | None = None) -> tuple[list[dict], dict]:
    """Score ``genotypes`` and write the study's files to ``out`` (an existing directory); returns the rows
    and the correlations (empty for a space without ground truth). ``workers`` and ``ray_address`` are
    ``score_architectures``'."""
    zero_cost_model = space.name == "nb201" and network == "zero-cost"
    options = {**(ZERO_COST_NB201_NETWORK if zero_cost_model else {}), **without_auxiliary(space)}
    batches = None
    if draws == "per-arch" and needs_data(proxies):
        loader, num_classes = training_loader(data, data_dir, seed, batch_size, quiet, device, augment=True)
        x = y = None
        batches = loader_batches(loader)
    else:
        x, y, num_classes = batch_for(proxies, data, data_dir, seed, batch_size, quiet, device)
        if draws == "per-arch":  # data-free proxies: a placeholder batch, weights drawn afresh per architecture
            batches = lambda i: (x, y)  # noqa: E731
    options["in_channels"] = int((x if x is not None else batches(0)[0]).shape[1])  # digits: one channel
    rows = score_architectures(space, genotypes, proxies, x, y, seed=seed, num_classes=num_classes,
                               network_options=options, device=device, progress=progress, batches=batches,
                               size_network_options=without_auxiliary(space) if zero_cost_model else None,
                               workers=workers, ray_address=ray_address)
    write_text_atomic(out / "scores.csv", rows_to_csv(rows, proxies))
    correlations = proxy_correlations(rows, proxies) if space.has_ground_truth else {}
    write_json_atomic(out / "correlations.json", correlations)
    if correlations:
        scatter_plots(rows, proxies, correlations, out)
    return rows, correlations

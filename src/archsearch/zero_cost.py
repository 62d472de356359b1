"""The logic behind ``archsearch proxies`` and ``archsearch zero-cost``.

``proxies``: score architectures with training-free proxies and correlate the scores with the
NAS-Bench-201 ground truth (200-epoch test accuracy), as Abdelfattah et al. (ICLR 2021) do.
``zero-cost``: the zero-cost NAS baseline: draw n random architectures, keep the proxy's favourite,
report its test accuracy, mean and std over seeds (BaLeNAS Table 2 compares against it).

``proxies`` follows the zero-cost code (SamsungLabs/zero-cost-nas, nasbench2_pred.py) by default: its
NAS-Bench-201 model (cells without affine BatchNorm), and for each architecture in turn the next batch of 64
images of a shuffled, augmented (crop and flip), normalised training loader and a network drawn afresh
(``draws="per-arch"``). ``draws="shared"`` and ``zero-cost`` use one unaugmented batch and one initial
seed for every architecture instead, so that a score belongs to an architecture and can be cached.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np
import torch

from archsearch.checks import MAX_REPEATS, integer, keyword_options, names, output_dir, readable_path
from archsearch.checks import seed as check_seed
from archsearch.errors import ConfigError, DataError, shown
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS
from archsearch.proxies import PROXIES, score_all
from archsearch.runtime import resolve_device
from archsearch.spaces.base import SearchSpace, get_space
from archsearch.utils.io import write_json_atomic, write_text_atomic

#: the proxies of the zero-cost study, in its table's order, then the two size baselines
DEFAULT_PROXIES = ("synflow", "jacob_cov", "snip", "grad_norm", "grasp", "fisher", "nwot", "params", "flops")
#: proxies that read nothing but the input's shape (no dataset needed)
DATA_FREE = frozenset({"synflow", "params", "flops"})
BENCH_DATASETS = NB201_DATASETS
BATCH_SIZE = 64  # Abdelfattah et al.: one batch of 64 images ("random" dataload, 1 batch)
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: the zero-cost code's normalisation (foresight/dataset.py, get_cifar_dataloaders): fixed constants, not the
#: statistics of the images at hand (the CIFAR std there is the widespread 0.2023, 0.1994, 0.2010)
ZERO_COST_NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "ImageNet16-120": (tuple(v / 255 for v in (122.68, 116.66, 104.01)), tuple(v / 255 for v in (63.22, 61.26, 65.09))),
}
#: ``network_options`` of the zero-cost code's NB201 model (foresight/models/nasbench2.py): its cells are
#: search cells built with affine=False, track_running_stats=False and masked to the genotype's ops
ZERO_COST_NB201_NETWORK = {"affine": False, "track_running_stats": False}
#: proxies score a network's logits: an auxiliary head (DARTS) would add a second output in training mode, the
#: mode they score in (passed only to spaces whose network has one)
NO_AUXILIARY = {"auxiliary": False}


def without_auxiliary(space) -> dict:
    return NO_AUXILIARY if "auxiliary" in keyword_options(space.network) else {}
#: ground truth the correlations are taken against: (key, dataset, split), all after 200 epochs. The zero-cost
#: code correlates CIFAR-10 with the test accuracy of the ``cifar10-valid`` runs (trained on 25k images),
#: which the table lacks; "cifar10-valid" here is the validation accuracy of those same runs.
TARGETS = (("cifar10", "cifar10", "test"), ("cifar10-valid", "cifar10", "valid"),
           ("cifar100", "cifar100", "test"), ("ImageNet16-120", "ImageNet16-120", "test"))
DRAWS = ("per-arch", "shared")
#: baselines that measure the network's size: the zero-cost study takes them from the benchmark, so they are
#: counted on the benchmark's network whatever network the other proxies score
SIZE_BASELINES = frozenset({"params", "flops"})


# -- data ---------------------------------------------------------------------------------------
def training_loader(data: str, data_dir=None, seed: int = 0, batch_size: int = BATCH_SIZE, quiet: bool = True,
                    device="cpu", augment: bool = False):
    """A shuffled loader of the training images, normalised as the zero-cost code where it names the
    dataset (else by the images' own statistics); with ``augment``, random crop (padding 4) and flip, the
    transforms of that code's training loader. Returns (loader, number of classes)."""
    from archsearch.data import BatchLoader, Subset, load_dataset
    from archsearch.data.augment import default_augment

    ds = load_dataset(data, data_dir, quiet=quiet)
    mean, std = ZERO_COST_NORMALISATION.get(data, (ds.mean, ds.std))
    loader = BatchLoader(Subset(ds.train_x, ds.train_y), batch_size, shuffle=True,
                         augment=default_augment(ds) if augment else None, mean=mean, std=std, device=device,
                         seed=seed)
    return loader, ds.num_classes


def real_batch(data: str, data_dir=None, seed: int = 0, batch_size: int = BATCH_SIZE, quiet: bool = True,
               device="cpu") -> tuple[torch.Tensor, torch.Tensor, int]:
    """One shuffled, normalised, unaugmented batch of training images and the dataset's number of classes."""
    loader, num_classes = training_loader(data, data_dir, seed, batch_size, quiet, device)
    x, y = next(iter(loader))
    return x, y, num_classes


def loader_batches(loader) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """Batch i = the first batch of pass i of ``loader``: the zero-cost code takes a new iterator of its
    shuffled training loader for every architecture (predictive.get_some_data)."""

    def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        loader.set_epoch(i)
        return next(iter(loader))

    return batch


def shape_batch(num_classes: int = 10, in_channels: int = 3, size: int = 32, device="cpu"):
    """A placeholder batch for the proxies that read only the input shape."""
    return (torch.zeros(2, in_channels, size, size, device=device), torch.zeros(2, dtype=torch.long, device=device))


def needs_data(proxies: Sequence[str]) -> bool:
    return any(p not in DATA_FREE for p in proxies)


# -- scoring ------------------------------------------------------------------------------------
def score_architectures(space: SearchSpace, genotypes: Sequence[Hashable], proxies: Sequence[str],
                        batch_x: torch.Tensor | None, batch_y: torch.Tensor | None, seed: int = 0,
                        num_classes: int = 10, network_options: dict | None = None, device=None,
                        progress: Callable[[int, int], None] | None = None,
                        batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
                        size_network_options: dict | None = None) -> list[dict]:
    """One row per architecture: arch, index (where the space has a benchmark index), each proxy, seconds.

    By default every architecture is scored on ``batch_x, batch_y`` from initial weights drawn with ``seed``.
    With ``batches``, architecture i is scored on ``batches(i)`` from weights drawn with ``seed + i``: the
    zero-cost code's protocol, where each network is drawn in turn from one seeded generator and sees the
    next batch of the training loader (nasbench2_pred.py). ``size_network_options``, where given, are the
    network options of the size baselines (``SIZE_BASELINES``) instead of ``network_options``.
    """
    for name in proxies:
        PROXIES.get(name)
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
                                        seed=seed if batches is None else seed + i, device=device))
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


def scatter_plots(rows: Sequence[dict], proxies: Sequence[str], correlations: dict, out_dir: Path,
                  dataset: str = "cifar10") -> list[Path]:
    """One PNG per proxy: score against the 200-epoch test accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from archsearch.groundtruth.nb201 import NB201Table

    table = NB201Table.load()
    accuracy = np.array([table.accuracy(r["arch"], dataset, "test", 200) for r in rows])
    paths = []
    for name in proxies:
        values = np.array([r[name] for r in rows], dtype=np.float64)
        keep = np.isfinite(values)
        fig, ax = plt.subplots(figsize=(4.5, 3.5), dpi=120)
        positive = keep & (values > 0)
        log_x = positive.sum() == keep.sum() and keep.any() and values[keep].max() / values[keep].min() > 1e3
        ax.scatter(values[keep], accuracy[keep], s=6, alpha=0.6)
        if log_x:
            ax.set_xscale("log")
        stats_ = correlations.get(name, {}).get(dataset, {})
        ax.set_title(f"{name}: Spearman {stats_.get('spearman', math.nan):.3f} (n={int(keep.sum())})")
        ax.set_xlabel(name)
        ax.set_ylabel(f"{dataset} test accuracy (%), 200 epochs")
        fig.tight_layout()
        path = out_dir / f"scatter_{name}.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        _write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    from archsearch.utils.io import _atomic_write

    _atomic_write(path, lambda handle: handle.write(data))


# -- zero-cost NAS baseline ---------------------------------------------------------------------
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
                       progress: Callable[[int, int], None] | None = None) -> dict:
    """For each seed, draw max(samples) distinct random cells (the first n of them are the size-n sample),
    keep the best by ``proxy``, and look up its test accuracy; mean and std over seeds per n.

    Networks are initialised from ``init_seed`` whatever the seed of the draw, so each cell is scored once.
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
    for i, genotype in enumerate(todo):
        values = score_all([proxy], lambda g=genotype: space.network(g, num_classes, **options), batch_x, batch_y,
                           seed=init_seed, device=device)
        cache[space.to_string(genotype)] = values[proxy]
        if progress is not None:
            progress(i + 1, len(todo))

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


# -- command line -------------------------------------------------------------------------------
def _comma_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in _comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def add_proxies_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    parser.add_argument("--proxies", type=_comma_list, default=list(DEFAULT_PROXIES),
                        help=f"comma-separated proxies (default {','.join(DEFAULT_PROXIES)})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--archs", type=int, default=None, help="score N architectures sampled uniformly")
    source.add_argument("--archs-file", default=None, help="score the architectures in FILE, one string a line")
    parser.add_argument("--data", default="cifar10", help="dataset of the batch (default cifar10)")
    parser.add_argument("--data-dir", default=None, help="where the dataset lies")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images in the batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, the batch and the initialisation")
    parser.add_argument("--draws", choices=DRAWS, default="per-arch",
                        help="per-arch (default, as the zero-cost code): each architecture gets the next augmented "
                             "batch of the training loader and initial weights of its own (seed + i); shared: one "
                             "unaugmented batch and one initialisation seed for all")
    parser.add_argument("--network", choices=("zero-cost", "benchmark"), default="zero-cost",
                        help="nb201 only. zero-cost (default): the zero-cost code's model, cell BatchNorms without "
                             "affine and without running statistics; benchmark: xautodl's network (affine)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _architectures(space: SearchSpace, args) -> list:
    if args.archs_file:
        path = readable_path(args.archs_file, "--archs-file", folder=False)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"--archs-file {shown(str(path))} is not UTF-8 text (one architecture string a line)") from None
        except OSError as error:
            raise DataError(f"cannot read --archs-file {shown(str(path))} ({error.strerror or error})") from None
        lines = [line.strip() for line in text.splitlines()]
        genotypes = [space.from_string(line) for line in lines if line and not line.startswith("#")]
        if not genotypes:
            raise ConfigError(f"--archs-file {shown(str(path))} lists no architectures (one string a line)")
        return genotypes
    n = integer(100 if args.archs is None else args.archs, "--archs", minimum=1, maximum=space.size())
    rng = np.random.default_rng(args.seed)
    picked: dict[str, Hashable] = {}
    while len(picked) < n:  # distinct architectures, in the order drawn
        genotype = space.sample(rng)
        picked.setdefault(space.to_string(genotype), genotype)
    return list(picked.values())


def _printer(quiet: bool, label: str):
    if quiet:
        return None
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            rate = (time.perf_counter() - start) / done
            print(f"{label}: {done}/{total} ({rate:.2f} s each)", flush=True)

    return progress


def _batch_for(proxies, data, data_dir, seed, batch_size, quiet, device):
    if needs_data(proxies):
        return real_batch(data, data_dir, seed, batch_size, quiet, device)
    num_classes = NUM_CLASSES.get(data, 10)
    return (*shape_batch(num_classes, device=device), num_classes)


def _common(args) -> tuple[SearchSpace, torch.device]:
    """What both commands check before any work: the space, the seeds, the device, the data set's name."""
    from archsearch.data import DATASETS

    space = get_space(args.space)
    for flag in ("seed", "init_seed"):
        if hasattr(args, flag):
            check_seed(getattr(args, flag), "--" + flag.replace("_", "-"))
    device = resolve_device(args.device)
    DATASETS.get(args.data)  # known, even where the proxies read no data
    return space, device


def proxies_main(args) -> int:
    space, args.device = _common(args)
    args.proxies = names(args.proxies, "--proxies", PROXIES)
    integer(args.batch_size, "--batch-size", minimum=1)
    genotypes = _architectures(space, args)
    out = output_dir(args.out, "--out")
    draws = getattr(args, "draws", "per-arch")
    zero_cost_model = args.space == "nb201" and getattr(args, "network", "zero-cost") == "zero-cost"
    options = {**(ZERO_COST_NB201_NETWORK if zero_cost_model else {}), **without_auxiliary(space)}
    batches = None
    if draws == "per-arch" and needs_data(args.proxies):
        loader, num_classes = training_loader(args.data, args.data_dir, args.seed, args.batch_size, args.quiet,
                                              args.device, augment=True)
        x = y = None
        batches = loader_batches(loader)
    else:
        x, y, num_classes = _batch_for(args.proxies, args.data, args.data_dir, args.seed, args.batch_size,
                                       args.quiet, args.device)
        if draws == "per-arch":  # data-free proxies: a placeholder batch, weights drawn afresh per architecture
            batches = lambda i: (x, y)  # noqa: E731
    options["in_channels"] = int((x if x is not None else batches(0)[0]).shape[1])  # digits: one channel
    rows = score_architectures(space, genotypes, args.proxies, x, y, seed=args.seed, num_classes=num_classes,
                               network_options=options, device=args.device, progress=_printer(args.quiet, "scored"),
                               batches=batches, size_network_options=without_auxiliary(space) if zero_cost_model else None)
    write_text_atomic(out / "scores.csv", rows_to_csv(rows, args.proxies))
    correlations = proxy_correlations(rows, args.proxies) if args.space == "nb201" else {}
    write_json_atomic(out / "correlations.json", correlations)
    if correlations:
        scatter_plots(rows, args.proxies, correlations, out)
    if not args.quiet:
        seconds = np.mean([r["seconds"] for r in rows])
        print(f"{len(rows)} architectures, {seconds:.2f} s each; Spearman vs 200-epoch accuracy:")
        for name, per in correlations.items():
            print("  " + f"{name:>10}: " + "  ".join(f"{d} {v['spearman']:+.3f}" for d, v in per.items()))
        print(f"wrote {out}/scores.csv, correlations.json and scatter plots")
    return 0


def add_zero_cost_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (default nb201: needs its benchmark)")
    parser.add_argument("--proxy", default="synflow", help="the ranking proxy (default synflow)")
    parser.add_argument("--samples", type=_int_list, default=[10, 50, 100],
                        help="comma-separated sample sizes (default 10,50,100)")
    parser.add_argument("--seeds", type=int, default=20, help="number of repeats, seeds 0..K-1 (default 20)")
    parser.add_argument("--init-seed", type=int, default=0, help="seed of every network's initialisation")
    parser.add_argument("--data", default="cifar10", help="dataset of the batch (for data-reading proxies)")
    parser.add_argument("--data-dir", default=None, help="where the dataset lies")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def zero_cost_main(args) -> int:
    if args.space != "nb201":
        raise ConfigError(f"zero-cost needs a tabular benchmark; only nb201 has one here, got {shown(args.space)}")
    space, args.device = _common(args)
    integer(args.seeds, "--seeds", minimum=1, maximum=MAX_REPEATS)
    PROXIES.get(args.proxy)
    sample_sizes(args.samples, space)
    out = output_dir(args.out, "--out")
    x, y, num_classes = _batch_for([args.proxy], args.data, args.data_dir, args.init_seed, BATCH_SIZE,
                                   args.quiet, args.device)
    result = zero_cost_baseline(space, args.proxy, args.samples, list(range(args.seeds)), x, y,
                                init_seed=args.init_seed, num_classes=num_classes, device=args.device,
                                progress=_printer(args.quiet, "scored"))
    write_json_atomic(out / "zero_cost.json", result)
    lines = ["samples,dataset,mean,std"]
    for n, entry in result["samples"].items():
        for d, s in entry["test_accuracy"].items():
            lines.append(f"{n},{d},{s['mean']:.4f},{s['std']:.4f}")
    write_text_atomic(out / "zero_cost.csv", "\n".join(lines) + "\n")
    if not args.quiet:
        print(f"zero-cost NAS with {args.proxy} over {args.seeds} seeds (test accuracy %, 200 epochs):")
        for n, entry in result["samples"].items():
            print(f"  n={n:>4}: " + "  ".join(f"{d} {s['mean']:.2f} +- {s['std']:.2f}"
                                             for d, s in entry["test_accuracy"].items()))
        print(f"wrote {out}/zero_cost.json and zero_cost.csv")
    return 0

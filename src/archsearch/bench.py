"""``archsearch bench``: run black-box strategies for many seeds on a tabular benchmark and summarise.

Each (strategy, seed) run is one job; jobs run inline, on ``--workers`` local processes (or threads), or
as Ray tasks on a cluster (``--ray-address``). A run depends only on its job description, so the results
are the same whatever executes them. Outputs (written atomically) in ``--out``:
``summary.json`` ({strategy: test_mean, test_std, valid_mean, valid_std, queries_mean}), ``table.md``
(the papers' "mean ± std" format), ``runs.jsonl`` (one line per run: best genotype, its test and
validation accuracy, queries, best-so-far trajectory), ``curves.png`` / ``curves.json`` (best-so-far test
accuracy against budget, mean with a 95 % confidence band).
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import math
import socket
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from archsearch.checks import MAX_REPEATS, integer, names, output_dir
from archsearch.checks import seed as check_seed
from archsearch.errors import ArchSearchError, ConfigError, UnknownNameError, shown
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS
from archsearch.utils.io import write_bytes_atomic, write_json_atomic, write_text_atomic

#: the largest budgets of one run: a run keeps every query it makes, and these bound it to minutes and to
#: memory while lying far past the space's 15,625 cells (the paper's 12,000 s buys about 100 queries)
MAX_QUERIES = 100_000
MAX_SECONDS = 1e7
#: NAS-Bench-201 paper, Table 5 (CIFAR-10 test accuracy, 12,000 s budget, 12-epoch validation objective)
PUBLISHED_CIFAR10 = {"random": (93.70, 0.36), "reinforce": (93.85, 0.37), "evolution": (93.92, 0.30),
                     "bohb": (93.61, 0.52)}


def run_job(job: dict) -> dict:
    """One strategy, one seed; everything is rebuilt from the job's plain description."""
    import torch

    from archsearch.evaluate.tabular import TabularEvaluator
    from archsearch.spaces import get_space
    from archsearch.strategies import Budget, make_strategy

    torch.set_num_threads(1)  # jobs run side by side; one thread each avoids oversubscription
    space = get_space(job["space"])
    strategy = make_strategy(job["strategy"], space, seed=job["seed"], **job.get("options", {}))
    evaluator = TabularEvaluator(job["dataset"], job["objective"])
    run = strategy.run(evaluator, Budget(job["queries"], job["seconds"]), batch=job["batch"],
                       asynchronous=job["asynchronous"])
    return run.as_dict()


def _check_reachable(address: str | None) -> None:
    """A cluster address (``host:port`` or ``ray://host:port``) answers a TCP connection within seconds:
    ray.init would otherwise retry an unreachable one for minutes."""
    if address in (None, "local", "auto"):
        return
    host, sep, port = str(address).split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArchSearchError(f"Ray address {shown(address)} is not host:port; give 'local', 'auto' or "
                              "'ray://host:port'")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, UnicodeError) as err:
        raise ArchSearchError(f"cannot reach Ray at {shown(address)} ({getattr(err, 'strerror', None) or err}); "
                              "is the cluster up?") from None


class _RayPool:
    """``map`` over Ray tasks, results in submission order."""

    def __init__(self, address: str | None, workers: int):
        try:
            import ray
        except ImportError:
            raise ArchSearchError("--ray-address needs Ray: pip install 'archsearch[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            _check_reachable(address)
            try:
                ray.init(address=None if address in (None, "local") else address, log_to_driver=False)
            except Exception as error:  # Ray reports an unreachable or malformed address in several types
                raise ArchSearchError(f"cannot start or reach Ray at {shown(address)} ({type(error).__name__}: "
                                      f"{shown(str(error), 200)}); give 'local', 'auto' or 'ray://host:port'") from None
        self.task = ray.remote(num_cpus=1)(run_job)

    def map(self, fn, jobs):
        return self.ray.get([self.task.remote(job) for job in jobs])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


EXECUTORS = ("process", "thread")


def _pool(workers: int, ray_address: str | None, executor: str):
    if ray_address is not None:
        return _RayPool(ray_address, workers)
    if workers <= 1:
        return None
    return ThreadPoolExecutor(workers) if executor == "thread" else ProcessPoolExecutor(workers)


def _checked_options(options, strategies: list[str], space: str) -> dict:
    """``options`` ({strategy: {keyword: value}}) checked by building each strategy once, and each value
    against the type of the keyword's default: a bad option fails here, not inside a worker mid-study."""
    from archsearch.strategies import make_strategy

    if not isinstance(options, dict):
        raise ConfigError(f"options must map a strategy name to its keyword arguments, got {shown(options)}")
    for name, given in options.items():
        if name not in strategies:
            raise ConfigError(f"an option is given for strategy {shown(name)}, which is not among the strategies "
                              f"run ({', '.join(strategies)})")
        if not isinstance(given, dict) or not all(isinstance(key, str) for key in given):
            raise ConfigError(f"the options of strategy '{name}' must map keywords to values, got {shown(given)}")
        if "seed" in given:
            raise ConfigError(f"the seed of '{name}' is set per run from the seeds; drop the option")
        try:
            strategy = make_strategy(name, space, seed=0, **given)
        except ArchSearchError:
            raise
        except (TypeError, ValueError) as error:
            raise ConfigError(f"bad option for strategy '{name}': {shown(str(error), 200)}") from None
        defaults = inspect.signature(type(strategy).__init__).parameters
        for key, value in given.items():
            default = defaults[key].default if key in defaults else None
            if default is not None and default is not inspect.Parameter.empty and not _same_kind(value, default):
                raise ConfigError(f"option {name}.{key} takes a {type(default).__name__} "
                                  f"(default {default!r}), got {shown(value)}")
    return options


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, type(default))


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == name]
        test_mean, test_std = _mean_std([r["test"] for r in mine])
        valid_mean, valid_std = _mean_std([r["valid"] for r in mine])
        summary[name] = {"test_mean": test_mean, "test_std": test_std, "valid_mean": valid_mean,
                         "valid_std": valid_std, "queries_mean": float(np.mean([r["queries"] for r in mine]))}
    return summary


def markdown_table(summary: dict, protocol: str, anchors: dict | None = None) -> str:
    lines = [f"Protocol: {protocol}", "", "| strategy | validation | test | queries |" + (" published test |" if anchors else ""),
             "| --- | --- | --- | --- |" + (" --- |" if anchors else "")]
    for name, s in summary.items():
        row = f"| {name} | {s['valid_mean']:.2f} ± {s['valid_std']:.2f} | {s['test_mean']:.2f} ± {s['test_std']:.2f} " \
              f"| {s['queries_mean']:.1f} |"
        if anchors:
            row += f" {anchors[name][0]:.2f} ± {anchors[name][1]:.2f} |" if name in anchors else " – |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def curves(runs: list[dict], horizon: float, by: str) -> dict:
    """Best-so-far test accuracy on a grid of budgets: mean and a 95 % normal band (1.96 standard errors)."""
    grid = np.linspace(0.0, horizon, 201)[1:] if by == "seconds" else np.arange(1, int(horizon) + 1, dtype=float)
    column = 0 if by == "seconds" else 1
    out = {"by": by, "grid": grid.tolist(), "strategies": {}}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        rows = []
        for r in (r for r in runs if r["strategy"] == name):
            steps = np.array(r["best_so_far"], dtype=float).reshape(-1, 4)
            if not len(steps):  # a budget too small for one query: nothing reached, anywhere
                rows.append(np.full_like(grid, np.nan))
                continue
            at = np.searchsorted(steps[:, column], grid, side="right") - 1  # last improvement at or before
            rows.append(np.where(at >= 0, steps[np.maximum(at, 0), 3], np.nan))
        values = np.array(rows)
        count = np.sum(~np.isnan(values), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # grid points no run has reached yet
            mean = np.nanmean(np.where(count > 0, values, 0.0), axis=0) if len(rows) else grid * np.nan
            sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(count) if len(rows) > 1 else np.zeros_like(grid)
        band = 1.96 * np.nan_to_num(sem)
        out["strategies"][name] = {"mean": mean.tolist(), "lower": (mean - band).tolist(),
                                   "upper": (mean + band).tolist()}
    return out


def plot_curves(data: dict, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    grid = np.array(data["grid"])
    for name, c in data["strategies"].items():
        mean = np.array(c["mean"], dtype=float)
        ax.plot(grid, mean, label=name)
        ax.fill_between(grid, np.array(c["lower"], dtype=float), np.array(c["upper"], dtype=float), alpha=0.2)
    finite = np.concatenate([np.array(c["mean"], dtype=float) for c in data["strategies"].values()])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        ax.set_ylim(np.quantile(finite, 0.05) - 0.5, finite.max() + 0.5)
    ax.set_xlabel("simulated seconds" if data["by"] == "seconds" else "queries")
    ax.set_ylabel("test accuracy of best-by-objective (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def run_bench(strategies, seeds: int = 10, queries: int | None = None, seconds: float | None = None,
              space: str = "nb201", dataset: str = "cifar10", objective: str = "valid12", workers: int = 1,
              ray_address: str | None = None, out: str | Path | None = None, quiet: bool = False, batch: int = 1,
              asynchronous: bool = False, executor: str = "process", options: dict | None = None,
              first_seed: int = 0) -> dict:
    """Run each strategy for ``seeds`` seeds (first_seed, first_seed+1, ...); returns the summary dict.
    ``options`` maps a strategy name to its keyword arguments."""
    from archsearch.groundtruth.nb201_datasets import canonical_dataset
    from archsearch.evaluate.tabular import OBJECTIVES
    from archsearch.strategies import STRATEGIES, Budget

    strategies = names(strategies, "strategies", STRATEGIES)  # unknown names fail before any work
    if space != "nb201":
        raise ConfigError(f"bench needs a tabular space; only 'nb201' has ground truth here, got {shown(space)}")
    if (queries is None) == (seconds is None):
        raise ConfigError("bench needs exactly one budget: --queries N or --seconds S")
    Budget(queries, seconds)  # validates
    if (queries or 0) > MAX_QUERIES or (seconds or 0) > MAX_SECONDS:
        raise ConfigError(f"bench budgets go up to {MAX_QUERIES:,} queries or {MAX_SECONDS:g} simulated seconds a run, "
                          f"got {shown(queries if queries is not None else seconds)}")
    seeds = integer(seeds, "seeds", minimum=1, maximum=MAX_REPEATS)
    workers = integer(workers, "workers", minimum=1)
    batch = integer(batch, "batch", minimum=1)
    first_seed = check_seed(first_seed, "first_seed")
    check_seed(first_seed + seeds - 1, "the last seed (first_seed + seeds - 1)")
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be 'process' or 'thread', got {shown(executor)}")
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise UnknownNameError("objective", objective, OBJECTIVES)
    dataset = canonical_dataset(dataset)
    options = _checked_options({} if options is None else options, strategies, space)
    if out is not None:
        out = output_dir(out, "--out")  # before the study, not after it
    jobs = [{"strategy": name, "seed": first_seed + k, "space": space, "dataset": dataset, "objective": objective,
             "queries": queries, "seconds": seconds, "batch": batch, "asynchronous": asynchronous,
             "options": options.get(name, {})} for name in strategies for k in range(seeds)]
    pool = _pool(min(workers, len(jobs)), ray_address, executor)
    if pool is None:
        runs = []
        for job in jobs:
            runs.append(run_job(job))
            if not quiet and job["seed"] == first_seed + seeds - 1:
                print(f"{job['strategy']}: {seeds} seeds done", flush=True)
    else:
        with pool:
            runs = list(pool.map(run_job, jobs))
    summary = summarise(runs)
    budget = f"{seconds:g} simulated seconds" if seconds is not None else f"{queries} queries"
    protocol = (f"{space} {dataset}, objective {objective}, reported = 200-epoch test accuracy of the "
                f"best-by-objective genotype, budget {budget}, {seeds} seeds, batch {batch}"
                + (" asynchronous" if asynchronous else ""))
    anchors = PUBLISHED_CIFAR10 if (dataset, objective, seconds) == ("cifar10", "valid12", 12000) else None
    table = markdown_table(summary, protocol, anchors)
    if out is not None:
        write_text_atomic(out / "runs.jsonl", "".join(json.dumps(r) + "\n" for r in runs))
        write_json_atomic(out / "summary.json", summary)
        write_text_atomic(out / "table.md", table)
        data = curves(runs, seconds if seconds is not None else queries, "seconds" if seconds is not None else "queries")
        write_json_atomic(out / "curves.json", data)
        write_bytes_atomic(out / "curves.png", plot_curves(data, f"{space} {dataset} ({objective})"))
    if not quiet:
        print(table, end="", flush=True)
    return summary


def add_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from archsearch.strategies import STRATEGIES

    parser.add_argument("--space", default="nb201", help="tabular search space (default nb201)")
    parser.add_argument("--dataset", default="cifar10", help=" | ".join(NB201_DATASETS))
    parser.add_argument("--strategies", required=True,
                        help=f"comma-separated strategies: {', '.join(STRATEGIES.names())}")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--queries", type=int, help="budget in evaluations")
    budget.add_argument("--seconds", type=float, help="budget in simulated training seconds (NB201 paper: 12000)")
    parser.add_argument("--seeds", type=int, default=10, help="runs per strategy (seeds 0..K-1)")
    parser.add_argument("--objective", default="valid12", choices=["valid12", "valid200"])
    parser.add_argument("--workers", type=int, default=1, help="local worker processes running seeds in parallel")
    parser.add_argument("--executor", default="process", choices=["process", "thread"])
    parser.add_argument("--ray-address", default=None, help="Ray cluster address ('auto', 'ray://host:10001', "
                                                            "or 'local' to start one here)")
    parser.add_argument("--batch", type=int, default=1, help="genotypes in flight per run (simulated workers)")
    parser.add_argument("--async", dest="asynchronous", action="store_true",
                        help="with --batch B: ask a new genotype as soon as one finishes")
    parser.add_argument("--option", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                        help="strategy keyword argument, e.g. bo.acquisition=ucb (YAML value)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true")
    return parser


def _parse_options(items: list[str]) -> dict:
    import yaml

    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, arg = key.partition(".")
        if not sep or not dot or not name.strip() or not arg.strip():
            raise ConfigError(f"--option {shown(item)} must look like STRATEGY.KEY=VALUE, e.g. bo.acquisition=ucb")
        try:
            parsed = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError) as error:  # RecursionError: a value nested thousands deep
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(f"--option {shown(item)}: the value is not valid YAML ({reason})") from None
        options.setdefault(name.strip(), {})[arg.strip()] = parsed
    return options


def bench_main(args: argparse.Namespace) -> int:
    run_bench(args.strategies, seeds=args.seeds, queries=args.queries, seconds=args.seconds, space=args.space,
              dataset=args.dataset, objective=args.objective, workers=args.workers, ray_address=args.ray_address,
              out=args.out, quiet=args.quiet, batch=args.batch, asynchronous=args.asynchronous,
              executor=args.executor, options=_parse_options(args.option))
    return 0


if __name__ == "__main__":
    raise SystemExit(bench_main(add_bench_arguments(argparse.ArgumentParser("archsearch bench")).parse_args()))

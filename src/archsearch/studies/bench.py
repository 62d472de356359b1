"""The bench study: black-box strategies for many seeds on a tabular benchmark, summarised.

Each (strategy, seed) run is one job; jobs run inline, on local processes (or threads), or as Ray tasks
on a cluster (``studies/pool.py``). Outputs (written atomically) in ``out``: ``summary.json`` ({strategy:
test_mean, test_std, valid_mean, valid_std, queries_mean}), ``table.md`` (the papers' "mean ± std"
format), ``runs.jsonl`` (one line per run: best genotype, its test and validation accuracy, queries,
best-so-far trajectory), ``curves.png`` / ``curves.json`` (best-so-far test accuracy against budget, mean
with a 95 % confidence band).
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

from archsearch.checks import MAX_REPEATS, integer, names, output_dir
from archsearch.checks import seed as check_seed
from archsearch.errors import ArchSearchError, ConfigError, UnknownNameError, shown
from archsearch.studies.bench_summary import PUBLISHED_CIFAR10, curves, markdown_table, summarise
from archsearch.studies.pool import EXECUTORS, make_pool, run_jobs
from archsearch.utils.io import write_json_atomic, write_text_atomic

#: the largest budgets of one run: a run keeps every query it makes, and these bound it to minutes and to
#: memory while lying far past the space's 15,625 cells (the paper's 12,000 s buys about 100 queries)
MAX_QUERIES = 100_000
MAX_SECONDS = 1e7


def run_job(job: dict) -> dict:
    """One strategy, one seed; everything is rebuilt from the job's plain description."""
    from archsearch.evaluate.tabular import TabularEvaluator
    from archsearch.spaces import get_space
    from archsearch.strategies import Budget, make_strategy

    space = get_space(job["space"])
    strategy = make_strategy(job["strategy"], space, seed=job["seed"], **job.get("options", {}))
    evaluator = TabularEvaluator(job["dataset"], job["objective"])
    run = strategy.run(evaluator, Budget(job["queries"], job["seconds"]), batch=job["batch"],
                       asynchronous=job["asynchronous"])
    return run.as_dict()


def checked_options(options, strategies: list[str], space: str) -> dict:
    """``options`` ({strategy: {keyword: value}}) checked by building each strategy once, and each value
    against the type of the keyword's default: a bad option fails here, not inside a worker mid-study."""
    from archsearch.strategies import STRATEGIES, make_strategy

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
        # each value against its default's kind before the strategy sees it: a value of the wrong kind
        # may fail inside the constructor in ways of its own (an int past 64 bits as a deque's length)
        defaults = inspect.signature(STRATEGIES.get(name).__init__).parameters
        for key, value in given.items():
            default = defaults[key].default if key in defaults else None
            if default is not None and default is not inspect.Parameter.empty and not _same_kind(value, default):
                raise ConfigError(f"option {name}.{key} takes a {type(default).__name__} "
                                  f"(default {default!r}), got {shown(value)}")
        try:
            make_strategy(name, space, seed=0, **given)
        except ArchSearchError:
            raise
        except (TypeError, ValueError, OverflowError) as error:
            raise ConfigError(f"bad option for strategy '{name}': {shown(str(error), 200)}") from None
    return options


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(default, int):  # past 64 bits no size, count or seed means anything (numpy refuses it)
        return isinstance(value, int) and -2**63 <= value < 2**63
    return isinstance(value, type(default))


def _save(out: Path, runs: list[dict], summary: dict, table: str, curve_data: dict, title: str) -> None:
    # matplotlib takes a second to import: only when a figure is drawn
    from archsearch.report.png import save_png
    from archsearch.studies.figures import curves_figure

    write_text_atomic(out / "runs.jsonl", "".join(json.dumps(r) + "\n" for r in runs))
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.md", table)
    write_json_atomic(out / "curves.json", curve_data)
    save_png(curves_figure(curve_data, title), out / "curves.png", dpi=120, bbox_inches="tight")


def run_bench(strategies, seeds: int = 10, queries: int | None = None, seconds: float | None = None,
              space: str = "nb201", dataset: str = "cifar10", objective: str = "valid12", workers: int = 1,
              ray_address: str | None = None, out: str | Path | None = None, quiet: bool = False, batch: int = 1,
              asynchronous: bool = False, executor: str = "process", options: dict | None = None,
              first_seed: int = 0) -> dict:
    """Run each strategy for ``seeds`` seeds (first_seed, first_seed+1, ...); returns the summary dict.
    ``options`` maps a strategy name to its keyword arguments."""
    from archsearch.groundtruth.nb201_datasets import canonical_dataset
    from archsearch.evaluate.tabular import OBJECTIVES
    from archsearch.spaces import SPACES
    from archsearch.strategies import STRATEGIES, Budget

    strategies = names(strategies, "strategies", STRATEGIES)  # unknown names fail before any work
    if not (isinstance(space, str) and space in SPACES and SPACES.get(space).has_ground_truth):
        tabular = ", ".join(n for n in SPACES.names() if SPACES.get(n).has_ground_truth)
        raise ConfigError(f"bench needs a tabular space; only {tabular!r} has ground truth here, got {shown(space)}")
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
    options = checked_options({} if options is None else options, strategies, space)
    if out is not None:
        out = output_dir(out, "--out")  # before the study, not after it
    jobs = [{"strategy": name, "seed": first_seed + k, "space": space, "dataset": dataset, "objective": objective,
             "queries": queries, "seconds": seconds, "batch": batch, "asynchronous": asynchronous,
             "options": options.get(name, {})} for name in strategies for k in range(seeds)]

    def report_strategy_done(job: dict) -> None:
        if not quiet and job["seed"] == first_seed + seeds - 1:
            print(f"{job['strategy']}: {seeds} seeds done", flush=True)

    runs = run_jobs(run_job, jobs, make_pool(min(workers, len(jobs)), ray_address, executor), report_strategy_done)
    summary = summarise(runs)
    budget = f"{seconds:g} simulated seconds" if seconds is not None else f"{queries} queries"
    protocol = (f"{space} {dataset}, objective {objective}, reported = 200-epoch test accuracy of the "
                f"best-by-objective genotype, budget {budget}, {seeds} seeds, batch {batch}"
                + (" asynchronous" if asynchronous else ""))
    anchors = PUBLISHED_CIFAR10 if (dataset, objective, seconds) == ("cifar10", "valid12", 12000) else None
    table = markdown_table(summary, protocol, anchors)
    if out is not None:
        data = curves(runs, seconds if seconds is not None else queries, "seconds" if seconds is not None else "queries")
        _save(out, runs, summary, table, data, f"{space} {dataset} ({objective})")
    if not quiet:
        print(table, end="", flush=True)
    return summary

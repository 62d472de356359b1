"""The compare study: differentiable search methods over seeds, tabulated as NAS-Bench-201's Table 5.

Each (method, seed) is one ordinary run directory ``<out>/<method>-seed<k>/`` made by
``search.runner.run_search``, so a study that is stopped continues where it was: a finished run (its
genotype.json, written last by the runner) is kept, a started one resumed, a missing one started. A run
that fails costs only itself; its one-line error goes into the study's notes. Jobs run inline, on local
processes or threads, or on Ray (``studies/pool.py``, as ``bench``). The table itself is
``studies/compare_table.py``: it reads run directories, so finished studies are tabulated without running.
"""

from __future__ import annotations

import time
from pathlib import Path

from archsearch.checks import integer, names, output_dir
from archsearch.checks import seed as check_seed
from archsearch.errors import ArchSearchError, ConfigError, RunDirectoryError, shown
from archsearch.studies.compare_table import find_runs, read_json, save_compare, tabulate
from archsearch.studies.pool import EXECUTORS, make_pool, run_jobs
from archsearch.utils.checkpoint import one_line

#: configuration keys a study sets per run; an override may not set them for all
PER_RUN_KEYS = ("method", "seed")


def check_seeds(value) -> list[int]:
    """A non-empty list of distinct seeds (each in the range ``checks.seed`` allows), from a comma-separated
    string ("0,1,2") or an iterable of integers."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            items = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {shown(value)}") from None
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"seeds must be a list of integers, got {shown(value)}")
    seeds = [check_seed(s, "a seed") for s in items]
    if not seeds:
        raise ConfigError("--seeds needs at least one seed, e.g. 0,1,2")
    twice = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
    if twice is not None:
        raise ConfigError(f"--seeds names seed {twice} twice; give each once")
    return seeds


def check_study(methods, seeds, overrides: dict | None = None) -> tuple[list[str], list[int], dict]:
    """Methods, seeds and the overrides every run takes, checked before anything runs: each method's
    configuration is resolved once with the overrides (an unknown key or a bad value fails here)."""
    from archsearch.search import METHODS
    from archsearch.search.resolve import resolve_config

    methods = names(methods, "--methods", METHODS)
    seeds = check_seeds(seeds)
    overrides = dict(overrides or {})
    for key in PER_RUN_KEYS:
        if key in overrides:
            raise ConfigError(f"'{key}' is set per run by --{key}s; drop {key}={overrides[key]}")
    for method in methods:
        resolve_config(method, overrides={**overrides, "seed": seeds[0]})
    return methods, seeds, overrides


def run_dir(out: Path, method: str, seed: int) -> Path:
    return Path(out) / f"{method}-seed{seed}"


def is_finished(directory: Path) -> bool:
    """The runner writes genotype.json a last time, with ``out_dir``, once everything (the training of the
    found cell too) is done; the search loop's own earlier write has no ``out_dir``."""
    summary = read_json(directory / "genotype.json")
    return isinstance(summary, dict) and "out_dir" in summary


def _refuse_other_settings(directory: Path, wanted, keys=None) -> None:
    """The run in ``directory`` was made with the ``wanted`` configuration (its ``keys``, else all of it);
    a study never counts, nor continues, another run as one of its own."""
    from archsearch.search.config import SearchConfig, apply_overrides
    from archsearch.utils.io import read_yaml

    try:
        saved = apply_overrides(SearchConfig(), read_yaml(directory / "config.yaml")).to_dict()
    except Exception as error:  # noqa: BLE001 - unreadable in any way: the run cannot be kept
        raise RunDirectoryError(f"'{directory}' holds a run whose config.yaml cannot be read "
                                f"({one_line(error, 120)})") from None
    differ = [k for k, v in wanted.to_dict().items() if saved.get(k) != v and (keys is None or k in keys)]
    if differ:
        key = differ[0]
        kind = "a finished run" if keys is None else "a run"
        raise RunDirectoryError(f"'{directory}' holds {kind} with other settings ({key}: "
                                f"{saved.get(key)!r} there, {wanted.to_dict()[key]!r} asked"
                                f"{f' and {len(differ) - 1} more' if len(differ) > 1 else ''}); "
                                "remove it or choose another --out")


def run_one(job: dict) -> dict:
    """One (method, seed): skipped where finished, resumed where started, else run; never raises for a
    failure of the run itself (one run's failure must not cost the others)."""
    from archsearch.search.resolve import resolve_config
    from archsearch.search.runner import run_search

    directory = Path(job["dir"])
    start = time.perf_counter()
    result = {"method": job["method"], "seed": job["seed"], "dir": str(directory), "error": None}
    try:
        config = resolve_config(job["method"], overrides={**job["overrides"], "seed": job["seed"]})
        if is_finished(directory):
            _refuse_other_settings(directory, config)
            result["status"] = "skipped"
        elif (directory / "config.yaml").is_file():
            _refuse_other_settings(directory, config, keys=PER_RUN_KEYS)  # the rest may change on resume
            run_search(resume=directory, changes=job["overrides"], quiet=True)
            result["status"] = "resumed"
        else:
            run_search(config, directory, quiet=True)
            result["status"] = "ran"
    except Exception as error:  # noqa: BLE001 - any failure of one run is reported, the study goes on
        # ours say what went wrong in words; anything else is named by its type (a CUDA error, say)
        named = "" if isinstance(error, ArchSearchError) else f"{type(error).__name__}: "
        result.update(status="failed", error=named + one_line(error, 200))
    if not job["quiet"]:
        took = f" in {time.perf_counter() - start:.1f} s" if result["status"] in ("ran", "resumed") else ""
        print(f"{job['method']} seed {job['seed']}: {result['status']}{took}"
              + (f": {result['error']}" if result["error"] else ""), flush=True)
    return result


def run_compare(methods, seeds, out, overrides: dict | None = None, jobs: int = 1, ray_address: str | None = None,
                executor: str = "process", quiet: bool = False) -> dict:
    """Run every (method, seed) into ``out`` (see the module's docstring) and tabulate them; the table's
    dict (``compare_table.tabulate``) with ``runs``, each run's status and error. Written to ``out``:
    compare.md, compare.csv and compare.json."""
    methods, seeds, overrides = check_study(methods, seeds, overrides)
    jobs = integer(jobs, "--jobs", minimum=1)
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be 'process' or 'thread', got {shown(executor)}")
    out = output_dir(out, "--out")
    plan = [{"method": m, "seed": s, "dir": str(run_dir(out, m, s)), "overrides": overrides, "quiet": quiet}
            for m in methods for s in seeds]
    results = run_jobs(run_one, plan, make_pool(min(jobs, len(plan)), ray_address, executor))
    failed = {r["dir"]: r["error"] for r in results if r["status"] == "failed"}
    names_of = {job["dir"]: (job["method"], job["seed"]) for job in plan}
    table = tabulate([Path(job["dir"]) for job in plan], failed, names_of)
    save_compare(table, out)
    return table


def compare_runs(paths, out=None) -> dict:
    """Tabulate finished runs without running anything: ``paths`` are run directories or folders of them
    (``compare_table.find_runs``); written to ``out`` where given."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ConfigError("--runs needs one or more run directories (or a compare's --out)")
    runs = find_runs(paths)
    out = output_dir(out, "--out") if out is not None else None
    table = tabulate(runs)
    if out is not None:
        save_compare(table, out)
    return table

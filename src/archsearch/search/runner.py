"""A search run end to end: directory, search, summary, and a brief training of the found cell."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
from pathlib import Path

import yaml

from archsearch.errors import ConfigError, RunDirectoryError
from archsearch.search.drivers import DRIVERS
from archsearch.search.config import SearchConfig, apply_overrides
from archsearch.search.config import RESUMABLE
from archsearch.search.loop import DifferentiableSearch, write_summary
from archsearch.search.resolve import resolve_config
from archsearch.utils.io import read_yaml
from archsearch.utils.progress import Console
from archsearch.utils.tensorboard import resolve_tensorboard
from archsearch.utils.resume import refuse_changes
from archsearch.utils.rundir import lock_run_dir, read_run_config

log = logging.getLogger("archsearch")


def demo_config() -> SearchConfig:
    """The default method on NAS-Bench-201 over the embedded digits, sized for a few CPU minutes:
    the full NB201 supernet (C=16, N=5) on 8x8 images, then 15 epochs of training of the found cell.
    The eigenvalue every 10 epochs, not at the "auto" cadence (which at 11 steps an epoch would wait 37):
    three estimates take 7% of the demo's search (benchmarks/diagnostic_cost.py)."""
    return resolve_config(overrides={"space": "nb201", "data": "digits", "epochs": 30, "hessian_every": 10,
                                     "train_epochs": 15})


def resume_config(out_dir: str | Path, changes: dict | None = None) -> SearchConfig:
    """The configuration a resumed run continues with: its config.yaml with ``changes`` applied, where
    each change is one of config.RESUMABLE (ConfigError names the first that is not)."""
    saved = read_run_config(out_dir, "search")
    missing = [k for k in SearchConfig.keys() if k not in saved]
    if missing:
        raise RunDirectoryError(f"cannot resume '{out_dir}': its config.yaml lacks {', '.join(missing)} "
                                "(truncated, or written by another version of archsearch)")
    config = apply_overrides(SearchConfig(), saved)
    wanted = apply_overrides(config, changes or {})
    refuse_changes(config.to_dict(), wanted.to_dict(), RESUMABLE, out_dir)
    return wanted


def run_search(config: SearchConfig | None = None, out_dir: str | Path | None = None, *,
               resume: str | Path | None = None, changes: dict | None = None, quiet: bool = False,
               dataset=None, console: Console | None = None, tensorboard: bool | None = None) -> dict:
    """Search with ``config`` into the new run directory ``out_dir``, or continue the run in ``resume``
    with ``changes`` ({key: value}, see ``resume_config``). ``console``: what the search and the training
    after it show (utils/progress.py; ``quiet=True``: nothing); ``tensorboard``: log to TensorBoard in
    each run directory (None: where installed)."""
    console = Console.of(console, quiet)
    quiet, tensorboard = quiet or not console.bars, resolve_tensorboard(tensorboard)  # a refusal before any write
    watched = functools.partial(DifferentiableSearch, console=console, tensorboard=tensorboard)
    if resume is not None:
        out_dir = Path(resume)
        config = resume_config(out_dir, changes)
    elif changes:
        raise ConfigError("changes apply when resuming a run; a new run takes them in its config")
    out_dir = Path(out_dir)
    # one writer per directory; in a data-parallel search that is process 0 alone
    writes = not (config.distributed and int(os.environ.get("RANK", "0")) != 0)
    with lock_run_dir(out_dir, create=resume is None) if writes else contextlib.nullcontext():
        if resume is None and (out_dir / "config.yaml").exists():
            raise RunDirectoryError(f"'{out_dir}' already holds a run: use --resume {out_dir} or another --out")
        if config.driver:  # a method made of several searches (P-DARTS' stages)
            search, genotype, summary = DRIVERS.get(config.driver)(
                config, out_dir, search_class=watched, resume=resume is not None, quiet=quiet,
                dataset=dataset)
        else:
            search = watched(config, out_dir, quiet=quiet, dataset=dataset)
            if resume is not None:
                search.resume()
            genotype = search.run()
            summary = search.summary(genotype)
            if not search.is_main:  # a data-parallel search: process 0 trains the found cell and writes the run
                return {**summary, "out_dir": str(out_dir)}
        summary["out_dir"] = str(out_dir)
        if config.train_epochs > 0 and summary["genotype"] is not None:  # None: the selector found no valid cell
            summary["train"] = _train_found(search, genotype, out_dir / "train", quiet, console, tensorboard)
        write_summary(out_dir, summary)
    return summary


def _train_found(search: DifferentiableSearch, genotype, out_dir: Path, quiet: bool, console: Console,
                 tensorboard: bool | None) -> dict:
    """Train the found cell from scratch on the search's dataset, with the space's recipe."""
    from archsearch.evaluate import default_recipe, train

    config = search.config
    network = {k: v for k, v in (("C", config.train_C), ("N", config.train_N)) if v}
    recipe = default_recipe(search.space).replace(epochs=config.train_epochs, network=network)
    resume = (out_dir / "config.yaml").is_file()
    if resume and _trained_genotype(out_dir) != search.space.to_string(genotype):
        # a resumed search that ran on (more epochs) can find another cell: the training of the old one
        # is a result the run no longer has
        log.warning("archsearch: warning: '%s' trained a cell this run no longer selects: training the new one",
                    out_dir)
        shutil.rmtree(out_dir)
        resume = False
    result = train(genotype, search.space, search.dataset, recipe, out_dir=out_dir, seed=config.seed,
                   device=config.device, quiet=quiet, resume=resume, deterministic=config.deterministic,
                   console=console, tensorboard=tensorboard)
    return {"epochs": config.train_epochs, "dataset": search.dataset.name,
            "test_accuracy": result["test_accuracy"], "params": result["params"]}


def _trained_genotype(out_dir: Path) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, AttributeError):
        return read_yaml(out_dir / "config.yaml").get("genotype")
    return None

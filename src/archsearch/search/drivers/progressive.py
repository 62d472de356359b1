"""Progressive search (P-DARTS: Chen, Xie, Wu & Tian, "Progressive Differentiable Architecture Search:
Bridging the Depth Gap between Search and Evaluation", ICCV 2019; chenxin061/pdarts ``train_search.py``).

A driver, not a loop: it runs one DifferentiableSearch per stage, each on a deeper supernet that holds
fewer candidate ops per edge, and prunes the weakest ops between stages:

    stage s = 1..S:  layers = layers + add_layers[s],  num_ops[s] candidates per edge,
                     dropout after identity skips, initial rate skip_dropout[s], decayed within the stage
    between stages:  on each edge keep the num_ops[s+1] ops of largest weight (``none`` may stay)
    after the last:  per node the 2 strongest edges, the strongest non-``none`` op on each, and at most
                     M skip connections in the normal cell (selector ``max-skips``, search/selectors/max_skips.py)

The skip-dropout schedule is an epoch hook (search/hooks/skip_dropout.py).

Each stage is a full run directory ``stage<s>/``; ``stages.json`` records what each finished stage kept,
so ``--resume`` continues the stage that was running.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from archsearch.settings import keyword_options
from archsearch.checks import integer, number
from archsearch.errors import ConfigError, RunDirectoryError, shown
from archsearch.search.config import SearchConfig
from archsearch.search.drivers.base import DRIVERS
from archsearch.search.hooks.skip_dropout import SkipDropoutSchedule
from archsearch.spaces import get_space
from archsearch.utils.io import write_json_atomic

__all__ = ["prune_op_subsets", "progressive_search", "stage_plan"]

_OPTIONS = {"add_layers", "num_ops", "skip_dropout", "dropout_decay"}


# ---- pruning between stages -----------------------------------------------------------------------
def prune_op_subsets(weights: dict[str, torch.Tensor], subsets: dict[str, list[list[str]]], keep: int,
                     ops: Sequence[str]) -> dict[str, list[list[str]]]:
    """Keep, on each edge, the ``keep`` ops of largest weight among those it holds; ``weights`` are over all
    the space's ``ops`` (edges, len(ops)). The weakest are dropped one at a time, ties to the lower column
    (``get_min_k``)."""
    out = {}
    for cell, rows in subsets.items():
        kept_rows = []
        for row, subset in enumerate(rows):
            if keep < 1 or keep > len(subset):
                raise ConfigError(f"cannot keep {keep} of the {len(subset)} ops of an edge")
            kept = list(subset)
            values = [float(weights[cell][row, ops.index(op)]) for op in kept]
            while len(kept) > keep:
                weakest = int(np.argmin(values))
                del kept[weakest], values[weakest]
            kept_rows.append(kept)
        out[cell] = kept_rows
    return out


# ---- the driver -----------------------------------------------------------------------------------
def _per_stage(options: dict, key: str, default: list, check) -> list:
    """One value per stage, each checked (``check(value, what)``)."""
    values = options.get(key, default)
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"driver_options {key} takes one value per stage (a list), got {shown(values)}")
    return [check(v, f"driver_options {key}") for v in values]


def stage_plan(config: SearchConfig) -> list[dict]:
    """Per stage: layers, candidate ops per edge, initial skip-dropout rate (validated driver_options)."""
    options = dict(config.driver_options)
    ops = get_space(config.space).ops
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigError(f"unknown progressive option(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(_OPTIONS))})")
    add_layers = _per_stage(options, "add_layers", [0], lambda v, w: integer(v, w, minimum=0, maximum=300))
    num_ops = _per_stage(options, "num_ops", [len(ops)], lambda v, w: integer(v, w, minimum=1, maximum=len(ops)))
    rates = _per_stage(options, "skip_dropout", [0.0] * len(add_layers), lambda v, w: number(v, w, minimum=0.0))
    if not (len(add_layers) == len(num_ops) == len(rates)) or not add_layers:
        raise ConfigError("driver_options add_layers, num_ops and skip_dropout need one value per stage, "
                          f"got {len(add_layers)}, {len(num_ops)} and {len(rates)}")
    if num_ops[0] != len(ops) or any(b > a for a, b in zip(num_ops, num_ops[1:])) or min(num_ops) < 1:
        raise ConfigError(f"num_ops must start at {len(ops)} (every op) and never grow, got {num_ops}")
    number(options.get("dropout_decay", 0.2), "driver_options dropout_decay", minimum=0.0)
    if any(r < 0 or r >= 1 for r in rates):
        raise ConfigError(f"skip_dropout rates must lie in [0, 1), got {rates}")
    return [{"stage": s + 1, "layers": config.layers + int(add), "num_ops": int(n), "skip_dropout": float(r)}
            for s, (add, n, r) in enumerate(zip(add_layers, num_ops, rates))]


def _finished_stages(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunDirectoryError(f"cannot resume: '{path}' is damaged ({type(err).__name__})") from None


def _stage_config(config: SearchConfig, plan: dict, subsets) -> SearchConfig:
    options = {**config.supernet_options, "op_subsets": subsets, "skip_dropout": plan["skip_dropout"]}
    return config.replace(layers=plan["layers"], supernet_options=options, driver=None, driver_options={})


@DRIVERS.register("progressive")
def progressive_search(config: SearchConfig, out_dir: str | Path, *, search_class, resume: bool = False,
                       quiet: bool = False, dataset=None):
    """Run the stages, each a ``search_class`` (the loop, handed in: it checks configurations against this
    registry, so importing it here would close a cycle); returns (the last stage's search, the genotype,
    the run summary)."""
    from archsearch.data import load_dataset  # registering drivers should not pull in data loading

    space = get_space(config.space)
    if "op_subsets" not in keyword_options(space.supernet):  # stages hold fewer ops per edge: the DARTS space
        raise ConfigError(f"the progressive (P-DARTS) driver runs on the DARTS space only, not '{config.space}': "
                          "pass --space darts")
    plan = stage_plan(config)
    decay = number(config.driver_options.get("dropout_decay", 0.2), "driver_options dropout_decay", minimum=0.0)
    out_dir = Path(out_dir)
    record_path = out_dir / "stages.json"
    done = _finished_stages(record_path) if resume else []
    if dataset is None:  # before anything is written: a dataset refused leaves the run directory empty
        dataset = load_dataset(config.data, config.data_dir, limit_train=config.limit_train, quiet=quiet)
    if not resume:
        config.save(out_dir / "config.yaml")

    subsets = {cell: [list(space.ops) for _ in range(edges)] for cell, (edges, _) in space.arch_shapes().items()}
    weights = None
    for stage in plan:
        if weights is not None and stage["num_ops"] < len(next(iter(subsets.values()))[0]):
            subsets = prune_op_subsets(weights, subsets, stage["num_ops"], space.ops)
        last = stage is plan[-1]
        finished = next((d for d in done if d["stage"] == stage["stage"]), None)
        if finished is not None and not last:
            weights = {cell: torch.tensor(w) for cell, w in finished["weights"].items()}
            continue
        stage_dir = out_dir / f"stage{stage['stage']}"
        schedule = SkipDropoutSchedule(stage["skip_dropout"], decay)
        search = search_class(_stage_config(config, stage, subsets), stage_dir, quiet=quiet,
                              dataset=dataset, hooks=[schedule])
        search.run_dir = out_dir  # the directory a user resumes
        if resume:
            search.resume()
            config.save(out_dir / "config.yaml")  # the checkpoint took the changes: record them
            resume = False  # later stages start afresh (a resumed one finished them before)
        genotype = search.run()
        weights = search.deterministic_weights()
        entry = {**stage, "op_subsets": subsets, "genotype": search.space.to_string(genotype),
                 "epochs_run": search.epoch, "stopped_early": search.stop_reason,
                 "weights": {cell: w.tolist() for cell, w in weights.items()}}
        if entry != finished:  # a last stage resumed with more epochs runs on
            done = [d for d in done if d["stage"] != stage["stage"]] + [entry]
            write_json_atomic(record_path, done)
    summary = search.summary(genotype)
    summary["epochs_run"] = sum(d["epochs_run"] for d in done)
    summary["stages"] = [{k: d[k] for k in ("stage", "layers", "num_ops", "skip_dropout", "genotype", "epochs_run")}
                         for d in done]
    return search, genotype, summary

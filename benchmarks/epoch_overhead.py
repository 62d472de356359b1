"""What a search epoch costs beyond its steps, at the NAS-Bench-201 protocol, through the real search loop.

    python benchmarks/epoch_overhead.py --method gdas --fraction 0.05 \
        --data-dir ../shared/data/cifar10/cifar10-jpeg.tar.gz
    python benchmarks/epoch_overhead.py --method darts,gdas --fraction 1     # whole epochs

CIFAR-10's 25k/25k search split, C=16, N=5, batch 64, the method's preset otherwise and every default
diagnostic: the Hessian eigenvalue at the ``auto`` cadence, the epoch record (op weights, genotype, ground
truth), metrics.jsonl and metrics.csv, plots, TensorBoard where installed, the checkpoint. The run
directory is a fresh temporary folder. ``DifferentiableSearch.run()`` runs as it is; its parts are timed
by wrapping them on the instance (and ``SearchWatch.epoch_end``, ``append_jsonl`` in the loop's module):

* steps: ``arch_step`` + ``weight_step``;
* data: producing each batch of both loaders (indexing, augmentation, normalisation), on the critical
  path as the loop draws them;
* the rest of ``train_epoch`` (per-step checks, the epoch's set-up): per step;
* the Hessian eigenvalue; the rest of ``epoch_record`` (genotype, op weights, ground truth, selector and
  hooks' fields); ``metrics.jsonl``; the checkpoint; ``SearchWatch.epoch_end`` (console, metrics.csv,
  plots, TensorBoard); what is left of the epoch's wall time (scheduler, the finite-state check, hooks).

``--fraction f`` runs the first k = ceil(f * S) of the epoch's S steps (S = 391) and extrapolates: the
per-step parts (steps, data, the rest of train_epoch) times S / k, the per-epoch parts once, as they
are; both figures are printed. It runs as many epochs as the ``auto`` cadence puts between two
eigenvalues (so exactly one is computed, at the last of them) unless ``--epochs`` says otherwise; the
overhead is given per epoch and for the run (the Hessian then amortised by its cadence), and the first
epoch apart (it imports the plotting and TensorBoard code and reads the ground-truth table).
GFLOP/s: FLOPs of ``--flops-steps`` further steps counted with torch's FlopCounterMode (convolutions and
matrix products, 2 per multiply-add), divided by the median step time. One JSON line per method.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time

import torch

from archsearch.data import load_dataset
from archsearch.search import loop as loop_module
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.meter import Meter
from archsearch.search.resolve import resolve_config
from archsearch.search.watch import SearchWatch

PER_STEP = ("steps", "data", "train_epoch_rest")
PER_EPOCH = ("hessian", "record", "metrics_jsonl", "checkpoint", "watch", "epoch_rest")


class Stop(Exception):
    """Raised after the last measured epoch's output, to leave run() there."""


class Timings:
    def __init__(self):
        self.epochs: list[dict] = []
        self.setup: dict = {}  # what run() does before its first epoch (the epoch-0 checkpoint)
        self.current: dict = self.setup
        self.step_times: list[float] = []

    def new_epoch(self) -> None:
        self.current = {key: 0.0 for key in (*PER_STEP, *PER_EPOCH)} | {"measured_steps": 0}
        self.epochs.append(self.current)

    def add(self, key: str, seconds: float) -> None:
        self.current[key] = self.current.get(key, 0.0) + seconds


def timed(timings: Timings, key: str, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings.add(key, time.perf_counter() - start)
    return wrapper


def instrument(search: DifferentiableSearch, timings: Timings, steps: int, epochs: int, scale: float):
    """Wrap the search's parts; each loader pass yields its first ``steps`` batches. Returns an undo."""
    arch_step, weight_step = search.arch_step, search.weight_step

    def step_pair(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = function(*args, **kwargs)
            seconds = time.perf_counter() - start
            timings.add("steps", seconds)
            if name == "weight":
                timings.current["measured_steps"] += 1
                timings.step_times.append(timings.current.pop("_arch", 0.0) + seconds)
            else:
                timings.current["_arch"] = seconds
            return out
        return wrapper

    search.arch_step, search.weight_step = step_pair("arch", arch_step), step_pair("weight", weight_step)
    for loader in (search.train_loader, search.valid_loader):
        batches = loader._batches

        def limited(order, generator, _batches=batches):
            source = _batches(order, generator)
            for _ in range(steps):
                start = time.perf_counter()
                batch = next(source, None)
                timings.add("data", time.perf_counter() - start)
                if batch is None:
                    return
                yield batch
        loader._batches = limited

    train_epoch, hessian, record = search.train_epoch, search.hessian_eigenvalue, search.epoch_record

    def train_epoch_timed():
        timings.new_epoch()
        start = time.perf_counter()
        out = train_epoch()
        total = time.perf_counter() - start
        timings.add("train_epoch_rest", total - timings.current["steps"] - timings.current["data"])
        timings.current["_start"] = start
        return out

    def record_timed(*args):
        start, before = time.perf_counter(), timings.current["hessian"]
        out = record(*args)
        timings.add("record", time.perf_counter() - start - (timings.current["hessian"] - before))
        return out

    search.train_epoch = train_epoch_timed
    search.hessian_eigenvalue = timed(timings, "hessian", hessian)
    search.epoch_record = record_timed
    search.save_checkpoint = timed(timings, "checkpoint", search.save_checkpoint)
    append_jsonl, epoch_end = loop_module.append_jsonl, SearchWatch.epoch_end
    loop_module.append_jsonl = timed(timings, "metrics_jsonl", append_jsonl)

    def epoch_end_timed(watch):
        start = time.perf_counter()
        epoch_end(watch)
        end = time.perf_counter()
        timings.add("watch", end - start)
        parts = sum(timings.current[k] for k in (*PER_STEP, *PER_EPOCH) if k != "epoch_rest")
        timings.current["epoch_rest"] = end - timings.current.pop("_start") - parts
        print(json.dumps({"epoch": len(timings.epochs), **summarise(timings.current, scale)}), file=sys.stderr,
              flush=True)  # as it goes: a protocol epoch is long
        if len(timings.epochs) >= epochs:
            raise Stop
    SearchWatch.epoch_end = epoch_end_timed

    def undo():
        loop_module.append_jsonl, SearchWatch.epoch_end = append_jsonl, epoch_end
    return undo


def summarise(epoch: dict, scale: float) -> dict:
    """One epoch's parts as measured and extrapolated to the whole epoch (per-step parts times ``scale``)."""
    full = {k: epoch[k] * (scale if k in PER_STEP else 1.0) for k in (*PER_STEP, *PER_EPOCH)}
    return {"measured_s": {k: round(epoch[k], 3) for k in (*PER_STEP, *PER_EPOCH)},
            "whole_epoch_s": {k: round(v, 3) for k, v in full.items()},
            "overhead_pct": round(100 * (sum(full.values()) - full["steps"]) / full["steps"], 2)}


def count_step_flops(search: DifferentiableSearch, batches: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    train, valid = iter(search.train_loader), iter(search.valid_loader)
    search.model.train()
    with FlopCounterMode(display=False) as counter:
        for _ in range(batches):
            train_batch, valid_batch = next(train), next(valid)
            search.arch_step(train_batch, valid_batch, Meter())
            search.weight_step(train_batch, Meter())
    return counter.get_total_flops() / batches


def run(method: str, args, dataset) -> dict:
    overrides = {"data": "cifar10", "data_dir": args.data_dir, "C": 16, "N": 5, "batch_size": 64}
    config = resolve_config(method, overrides=overrides)
    with tempfile.TemporaryDirectory(prefix="epoch-overhead-") as out:
        search = DifferentiableSearch(config, out, quiet=True, dataset=dataset)
        total_steps = min(len(search.train_loader), len(search.valid_loader))
        k = max(1, math.ceil(args.fraction * total_steps))
        epochs = args.epochs or max(1, search.hessian_every)
        timings = Timings()
        undo = instrument(search, timings, k, epochs, total_steps / k)
        start = time.perf_counter()
        try:
            search.run()
        except Stop:
            pass
        finally:
            undo()
        wall = time.perf_counter() - start
        flops = count_step_flops(search, args.flops_steps) if args.flops_steps else None
    scale = total_steps / k
    per_epoch = [summarise(e, scale) for e in timings.epochs]
    run_total = {key: sum(e[key] * (scale if key in PER_STEP else 1.0) for e in timings.epochs)
                 for key in (*PER_STEP, *PER_EPOCH)}
    later = timings.epochs[1:] or timings.epochs
    steady = {key: sum(e[key] * (scale if key in PER_STEP else 1.0) for e in later) for key in (*PER_STEP, *PER_EPOCH)}
    step = statistics.median(timings.step_times)
    out = {"method": method, "threads": torch.get_num_threads(), "steps_per_epoch": total_steps,
           "measured_steps_per_epoch": k, "fraction": round(k / total_steps, 4), "epochs": len(timings.epochs),
           "hessian_every": search.hessian_every, "tensorboard": bool(search.tensorboard),
           "median_step_s": round(step, 4), "wall_s": round(wall, 2),
           "before_first_epoch_s": {k: round(v, 3) for k, v in timings.setup.items()}, "per_epoch": per_epoch,
           "run_overhead_pct": round(100 * (sum(run_total.values()) - run_total["steps"]) / run_total["steps"], 2),
           "after_first_epoch_overhead_pct":
               round(100 * (sum(steady.values()) - steady["steps"]) / steady["steps"], 2)}
    if flops is not None:
        out.update(step_gflop=round(flops / 1e9, 2), step_gflop_per_s=round(flops / 1e9 / step, 1))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="darts,gdas", help="one preset or a comma-separated list")
    parser.add_argument("--data-dir", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--fraction", type=float, default=0.05, help="share of each epoch's steps run")
    parser.add_argument("--epochs", type=int, default=None, help="default: the Hessian's auto cadence")
    parser.add_argument("--flops-steps", type=int, default=2, help="steps whose FLOPs are counted (0: none)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must lie in (0, 1]")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    dataset = load_dataset("cifar10", args.data_dir, quiet=True)
    print(json.dumps({"dataset_load_s": round(time.perf_counter() - start, 2)}), flush=True)
    for method in args.method.split(","):
        print(json.dumps(run(method, args, dataset)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

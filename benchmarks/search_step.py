"""Time full search steps (one architecture step + one weight step) of the NB201 supernet.

    python benchmarks/search_step.py --method darts --C 16 --N 5 --batch 64 --steps 10 --warmup 3
    python benchmarks/search_step.py --method darts --reference     # the plain per-op path
    python benchmarks/search_step.py --space darts --method darts2 --steps 3 --warmup 1  # DARTS space, 8 cells

Methods: darts (first order), darts2 (second order), gdas, balenas, pcdarts, xnas, or any other preset;
``--method all`` runs the six, each in a fresh process so that each peak RSS is its own.
Random 32x32 input, as the reference peer's script (../shared/peers); prints one JSON line per
method with the median seconds per step after warm-up and the process's peak RSS so far. Run one
method per process when comparing peak memory (the peak is process-wide).

``--flops B`` adds the step's model FLOPs and the achieved GFLOP/s: one step on the per-op reference
path at batch B counted by torch's FlopCounterMode (convolutions and matrix products, 2 per
multiply-add; what the fast path recomputes in backward is not counted as work), scaled to --batch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import torch

from archsearch.data import ImageDataset
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config


def peak_rss_mb() -> float:
    with open("/proc/self/status") as handle:
        return int(re.search(r"VmHWM:\s+(\d+)", handle.read()).group(1)) / 1024


def random_dataset(batch: int, steps: int, classes: int = 10) -> ImageDataset:
    n = 2 * batch * (steps + 1)  # both halves of the search split hold `steps` batches
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return ImageDataset("random", x, y, x[:batch], y[:batch], [str(i) for i in range(classes)])


METHODS = ("darts", "darts2", "gdas", "balenas", "pcdarts", "xnas")


def make_search(method: str, C: int, N: int, batch: int, steps: int, reference: bool = False,
                space: str = "nb201", layers: int = 8, hvp: str | None = None) -> DifferentiableSearch:
    """A search of ``method`` on random data with ``steps`` batches in each half, ready to step; ``hvp``: the
    second-order step's Hessian-vector product (default: the preset's)."""
    overrides = {"space": space, "C": C, "N": N, "layers": layers, "batch_size": batch, "epochs": 1,
                 "hessian_every": 0, "arch_warmup_epochs": 0, "supernet_path": "reference" if reference else "fast"}
    if hvp is not None:
        overrides["hvp"] = hvp
    config = resolve_config(method, overrides=overrides)
    search = DifferentiableSearch(config, quiet=True, dataset=random_dataset(batch, steps))
    search.model.train()
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    return search


def time_method(method: str, C: int, N: int, batch: int, steps: int, warmup: int, reference: bool = False,
                space: str = "nb201", layers: int = 8, hvp: str | None = None) -> dict:
    search = make_search(method, C, N, batch, steps + warmup, reference, space, layers, hvp)
    from archsearch.search.meter import Meter

    times, cpu = [], []
    for i, (train_batch, valid_batch) in enumerate(zip(search.train_loader, search.valid_loader)):
        if i >= steps + warmup:
            break
        start, start_cpu = time.perf_counter(), time.process_time()
        search.arch_step(train_batch, valid_batch, Meter())
        search.weight_step(train_batch, Meter())
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)  # all threads' CPU seconds: steadier on a busy machine
    return {"method": method, "space": space, "path": "reference" if reference else "fast", "hvp": search.config.hvp,
            "C": C, "N": N, "layers": layers, "batch": batch, "steps": len(times),
            "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "median_cpu_s": round(statistics.median(cpu), 4),
            "peak_rss_mb": round(peak_rss_mb(), 1), "threads": torch.get_num_threads()}


def step_gflop(method: str, C: int, N: int, batch: int, counted_batch: int, space: str, layers: int,
               hvp: str | None) -> float:
    """Model GFLOP of one step at ``batch``, counted at ``counted_batch`` on the reference path (FLOPs are
    linear in the batch)."""
    from epoch_overhead import count_step_flops  # beside this script

    search = make_search(method, C, N, counted_batch, 1, True, space, layers, hvp)
    return count_step_flops(search, 1) / 1e9 * batch / counted_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="darts", help="one preset or a comma-separated list")
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5, help="NB201 cells per stage")
    parser.add_argument("--space", default="nb201", help="nb201 or darts (the DARTS CNN space)")
    parser.add_argument("--layers", type=int, default=8, help="DARTS cells")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="time the plain per-op supernet path")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--hvp", choices=("exact", "finite-difference"), default=None,
                        help="second order's Hessian-vector product (default: the preset's, exact)")
    parser.add_argument("--flops", type=int, default=None, metavar="B",
                        help="also count the step's model FLOPs at batch B (reference path) and give GFLOP/s")
    args = parser.parse_args()
    methods = METHODS if args.method == "all" else tuple(args.method.split(","))
    if len(methods) > 1:  # one fresh process per method: peak RSS is process-wide
        rc = 0
        for method in methods:
            argv = [a for a in sys.argv[1:]]
            index = argv.index("--method") if "--method" in argv else None
            if index is not None:
                del argv[index:index + 2]
            rc |= subprocess.call([sys.executable, os.path.abspath(__file__), "--method", method, *argv])
        sys.exit(rc)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = time_method(methods[0], args.C, args.N, args.batch, args.steps, args.warmup, args.reference,
                         args.space, args.layers, args.hvp)
    if args.flops:
        gflop = step_gflop(methods[0], args.C, args.N, args.batch, args.flops, args.space, args.layers, args.hvp)
        result.update(step_gflop=round(gflop, 1), gflop_per_s=round(gflop / result["median_s"], 1))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

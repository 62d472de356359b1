"""Time our DARTS-space search step (fast and reference paths) and xautodl's NASNetworkDARTS interleaved,
step by step, in one process (the DARTS-space sibling of paired_step.py).

    python benchmarks/paired_darts_step.py --order 1 --pairs 3 --warmup 1 \
        --peer-site /tmp/peer-venv/lib/python3.11/site-packages

DARTS' search configuration: C=16, 8 cells, batch 64 (``--batch``), 32x32, 10 classes. Each round runs one
step of each side, the order rotating from round to round; the medians and the median of the per-round
ratios are printed. The peer's step is benchmarks/xautodl_darts_step.py's ``Step`` (its second order is
quark0/darts' unrolled step with the finite-difference Hessian-vector product, written there in plain
torch: xautodl has none); ours is the search loop's ``darts`` (order 1) or ``darts2`` (order 2, our default
exact Hessian-vector product, second derivatives inside ``twice_differentiable()``: the fused cell
without recomputation). Only xautodl is imported from the peer's environment. Peak memory is
process-wide: measure it with search_step.py and the peer script in a process each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from archsearch.search.meter import Meter
from search_step import make_search


class OurStep:
    def __init__(self, order: int, batch: int, total: int, reference: bool):
        self.search = make_search("darts" if order == 1 else "darts2", 16, 5, batch, total, reference, "darts", 8)
        self.batches = [pair for pair, _ in zip(zip(self.search.train_loader, self.search.valid_loader), range(total))]

    def __call__(self, i: int) -> None:
        train_batch, valid_batch = self.batches[i]
        self.search.arch_step(train_batch, valid_batch, Meter())
        self.search.weight_step(train_batch, Meter())


def timed(step, i: int) -> float:
    start = time.perf_counter()
    step(i)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, choices=[1, 2], default=1)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-reference", action="store_true", help="leave our per-op path out")
    parser.add_argument("--peer-site", required=True, help="site-packages of the peer's environment")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (Path(args.peer_site) / "xautodl").is_dir():
        raise SystemExit(f"no xautodl in {args.peer_site}: install the peer's environment (../shared/peers/README.md)")
    sys.path.append(args.peer_site)  # after ours: torch stays ours, xautodl is found there
    from xautodl_darts_step import Step as PeerStep

    total = args.warmup + args.pairs
    sides = {"fast": OurStep(args.order, args.batch, total, False)}
    if not args.no_reference:
        sides["reference"] = OurStep(args.order, args.batch, total, True)
    sides["xautodl"] = PeerStep(args.order, args.batch, total)
    names = list(sides)
    times = {name: [] for name in names}
    for i in range(total):
        order = names[i % len(names):] + names[:i % len(names)]  # rotate who runs first
        for name in order:
            t = timed(sides[name], i)
            print(json.dumps({"step": i, "side": name, "s": round(t, 3)}), flush=True)  # survives a timeout
            if i >= args.warmup:
                times[name].append(t)
    result = {"order": args.order, "batch": args.batch, "rounds": args.pairs, "threads": torch.get_num_threads()}
    for name in names:
        result[f"{name}_median_s"] = round(statistics.median(times[name]), 3)
        if name != "xautodl":
            ratios = [a / b for a, b in zip(times[name], times["xautodl"])]
            result[f"{name}/xautodl_median_round_ratio"] = round(statistics.median(ratios), 3)
            result[f"{name}/xautodl_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()

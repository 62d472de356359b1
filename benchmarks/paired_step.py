"""Time our NB201 search step and the xautodl peer's interleaved, step by step, in one process.

    python benchmarks/paired_step.py --algo darts --pairs 20 \
        --peer-site /tmp/peer-venv/lib/python3.11/site-packages \
        --peer-script ../shared/peers/xautodl_nb201_step.py

This host's speed drifts by 10-25% within minutes, so two processes timed one after the other can
compare two different machines. Here each pair (one step of ours, one of the peer's, the order
alternating from pair to pair) runs within seconds, on one machine state; the median of the per-pair
time ratios is the figure. The peer's network comes from the peer script's own ``build``, its batches
from its ``make_batches``, and its step below is the peer script's step line for line (first-order
DARTS: the architecture step calls ``backward()``, so it computes every weight gradient too). Only
xautodl itself is imported from the peer's environment (``--peer-site``); torch is ours, the same
version. Peak memory is process-wide, so it is not measured here: run ``search_step.py`` and the peer
script in a process each for that.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from archsearch.search.meter import Meter
from search_step import make_search


def load_peer(script: str, site: str):
    if not Path(script).is_file():
        raise SystemExit(f"no peer timing script at {script} (../shared/peers/xautodl_nb201_step.py)")
    if not (Path(site) / "xautodl").is_dir():
        raise SystemExit(f"no xautodl in {site}: install the peer's environment (../shared/peers/README.md)")
    sys.path.append(site)  # after ours: torch and numpy stay ours, xautodl is found there
    spec = importlib.util.spec_from_file_location("peer_step", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PeerStep:
    """The peer script's search step (``run_one``), on its own network, optimizers and batches."""

    def __init__(self, peer, algo: str, batch: int, total: int, seed: int = 0):
        torch.manual_seed(seed)
        self.net = peer.build(algo, True)
        self.net.train()
        self.weights = list(self.net.get_weights())
        self.w_opt = torch.optim.SGD(self.weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(list(self.net.get_alphas()), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.crit = nn.CrossEntropyLoss()
        self.train = peer.make_batches(total, batch, seed + 1)
        self.valid = peer.make_batches(total, batch, seed + 2)

    def __call__(self, i: int) -> None:
        (xt, yt), (xv, yv) = self.train[i], self.valid[i]
        self.a_opt.zero_grad()
        _, logits = self.net(xv)
        self.crit(logits, yv).backward()
        self.a_opt.step()
        self.w_opt.zero_grad()
        _, logits = self.net(xt)
        self.crit(logits, yt).backward()
        torch.nn.utils.clip_grad_norm_(self.weights, 5.0)
        self.w_opt.step()


class OurStep:
    """One architecture step + one weight step of our search loop (as search_step.py times it)."""

    def __init__(self, method: str, batch: int, total: int, reference: bool = False):
        self.search = make_search(method, 16, 5, batch, total, reference)  # the peer's C=16, N=5
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
    parser.add_argument("--algo", choices=["darts", "gdas"], default="darts")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--reference", action="store_true", help="time our plain per-op path instead")
    parser.add_argument("--peer-site", required=True, help="site-packages of the peer's environment")
    parser.add_argument("--peer-script", required=True, help="the peer's timing script")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peer = load_peer(args.peer_script, args.peer_site)
    total = args.warmup + args.pairs
    ours, theirs = OurStep(args.algo, args.batch, total, args.reference), PeerStep(peer, args.algo, args.batch, total)
    ours_s, peer_s = [], []
    for i in range(total):
        if i % 2 == 0:  # the order alternates, so neither side always runs after the other's footprint
            a, b = timed(ours, i), timed(theirs, i)
        else:
            b, a = timed(theirs, i), timed(ours, i)
        if i >= args.warmup:
            ours_s.append(a), peer_s.append(b)
    ratios = [a / b for a, b in zip(ours_s, peer_s)]
    print(json.dumps({"algo": args.algo, "path": "reference" if args.reference else "fast", "pairs": len(ratios),
                      "threads": torch.get_num_threads(), "ours_median_s": round(statistics.median(ours_s), 4),
                      "peer_median_s": round(statistics.median(peer_s), 4),
                      "median_pair_ratio": round(statistics.median(ratios), 4),
                      "ratio_of_medians": round(statistics.median(ours_s) / statistics.median(peer_s), 4),
                      "pair_ratio_range": [round(min(ratios), 4), round(max(ratios), 4)]}))


if __name__ == "__main__":
    main()

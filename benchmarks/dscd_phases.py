"""Mean phase lengths of DSCD (steps of Adam, steps of global proposals) under each switching rule.

    OMP_NUM_THREADS=1 python benchmarks/dscd_phases.py --function styblinski-tang --dim 10 \
        --steps 2000 --runs 10 --seed 0 [--lrs 0.01,0.05,0.1,cos:0.1]

The runs are optbench's Adam+DSCD runs (archsearch.studies.optbench.run_gradient: the same seeded
starting points, seeds, box clamp and cosine schedule), taken once per rule with DSCD's step kinds
recorded. A phase is a maximal stretch of steps of one kind; the last phase of a run is cut off by the
budget, so it is left out of the means. Prints, per rule and learning rate, the mean local and global
phase lengths, the share of global steps and the accepted proposals per run.
"""

from __future__ import annotations

import argparse
from itertools import groupby

import numpy as np
import torch

from archsearch.groundtruth.synthetic import get_function
from archsearch.optim.dscd import DSCD, SWITCH_RULES
from archsearch.studies.optbench import DEFAULT_LRS, _start, parse_lrs


def step_kinds(function, x0, steps, lr, cosine, seed, switch) -> tuple[list[str], int]:
    """DSCD's kind of each step, and its accepted proposals, on optbench's Adam+DSCD run."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    adam = torch.optim.Adam([x], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=steps) if cosine else None
    dscd = DSCD(adam, bound=(function.low, function.high), rounds=steps, seed=seed, switch=switch)

    def closure():
        dscd.zero_grad()
        value = function(x)
        value.backward()
        return value.detach()

    kinds = []
    for _ in range(steps):
        kinds.append(dscd.mode)
        dscd.step(closure)
        with torch.no_grad():
            x.clamp_(function.low, function.high)
        if scheduler is not None:
            scheduler.step()
    return kinds, dscd.counts["accepted"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--function", default="styblinski-tang")
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lrs", default=DEFAULT_LRS)
    args = parser.parse_args()
    f = get_function(args.function)
    # the starting points and per-run seeds of archsearch.studies.optbench.optbench
    starts = [_start(f, args.dim, np.random.default_rng([args.seed, r])) for r in range(args.runs)]
    print(f"{args.function}, D={args.dim}, {args.steps} steps, {args.runs} runs, seed {args.seed}")
    print(f"{'rule':8} {'lr':>10} {'local phase':>12} {'global phase':>13} {'global share':>13} "
          f"{'accepted/run':>13}")
    for switch in SWITCH_RULES:
        for lr, cosine in parse_lrs(args.lrs):
            phases = {"local": [], "global": []}
            share, accepted = [], []
            for r, x0 in enumerate(starts):
                kinds, kept = step_kinds(f, x0, args.steps, lr, cosine, args.seed * 1000 + r, switch)
                runs = [(kind, len(list(group))) for kind, group in groupby(kinds)]
                for kind, length in runs[:-1]:  # the last phase is cut off by the budget
                    phases[kind].append(length)
                share.append(kinds.count("global") / len(kinds))
                accepted.append(kept)
            mean = {k: f"{np.mean(v):.1f} ({len(v)})" if v else "- (0)" for k, v in phases.items()}
            label = f"{'cos ' if cosine else ''}{lr:g}"
            print(f"{switch:8} {label:>10} {mean['local']:>12} {mean['global']:>13} {np.mean(share):>13.3f} "
                  f"{np.mean(accepted):>13.1f}")


if __name__ == "__main__":
    main()

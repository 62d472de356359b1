"""What the Hessian diagnostic costs at the default settings: the share of a search's time spent on the
eigenvalue, on both spaces, at the demo's scale and at the NAS-Bench-201 protocol's.

    python benchmarks/diagnostic_cost.py            # every scenario below (about 15 minutes on 2 cores)
    python benchmarks/diagnostic_cost.py --only demo
    python benchmarks/diagnostic_cost.py --only digits --space nb201 --hessian-order 2   # the unrolled Hessian

``demo``: the demo's own search (``archsearch demo`` without its training), run whole; the time inside the
eigenvalue is measured around each call and divided by the search's wall time.

The protocol scenarios (CIFAR-10 32x32, batch 64, 25k/25k: 390 steps per epoch; NB201 C=16 N=5, DARTS
C=16 with 8 cells) are too long for a CPU epoch, so they are measured by parts, alternating in one
process: the median time of a search step (architecture + weight step) and of one eigenvalue at the
default ``hessian_iters``, then  share = t_eig / (every * 390 * t_step + t_eig)  with ``every`` the
"auto" cadence's. The data are random 32x32 images (the cost does not depend on the pixels). The
"digits" scenarios apply the same arithmetic at the demo's data scale with the default settings.
Prints one JSON line per scenario.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from archsearch.data import ImageDataset, load_dataset
from archsearch.search.eigenvalue import coupled_weight_decay, eigenvalue_every, supernet_eigenvalue, unroll_for
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import demo_config

PROTOCOL_STEPS = 25_000 // 64 + 1  # NB201's search split: 25k train / 25k valid, batch 64


def random_cifar(steps: int, batch: int = 64) -> ImageDataset:
    n = 2 * batch * (steps + 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ImageDataset("random-cifar", x, y, x[:batch], y[:batch], [str(c) for c in range(10)])


def by_parts(name: str, overrides: dict, dataset, steps_per_epoch: int, repeats: int) -> dict:
    """Step and eigenvalue times, alternating, and the share at the auto cadence over ``steps_per_epoch``."""
    config = resolve_config(overrides=overrides)
    search = DifferentiableSearch(config, None, quiet=True, dataset=dataset)
    search.model.train()
    train, valid = iter(search.train_loader), iter(search.valid_loader)

    def step() -> float:
        start = time.perf_counter()
        train_batch, valid_batch = next(train), next(valid)
        search.arch_step(train_batch, valid_batch)
        search.weight_step(train_batch)
        return time.perf_counter() - start

    iterations: list[int] = []

    def eigenvalue() -> float:
        start = time.perf_counter()
        count = []
        generator = torch.Generator().manual_seed(len(iterations))
        supernet_eigenvalue(search.model, search.relaxation, search.hessian_batch, config.hessian_iters,
                            generator, progress=lambda k, n: count.append(k), l2=coupled_weight_decay(search.a_optimizer),
                            unroll=unroll_for(config, search.w_optimizer, search.train_loader))
        iterations.append(len(count))
        return time.perf_counter() - start

    step()  # warm-up
    step_times, eig_times = [], []
    for _ in range(repeats):
        step_times += [step() for _ in range(3)]
        eig_times.append(eigenvalue())
    t_step, t_eig = statistics.median(step_times), statistics.median(eig_times)
    every = eigenvalue_every(config.hessian_every, config.hessian_iters, steps_per_epoch, config.hessian_order)
    share = t_eig / (every * steps_per_epoch * t_step + t_eig)
    return {"scenario": name, "space": config.space, "hessian_order": config.hessian_order, "steps_per_epoch": steps_per_epoch, "step_s": round(t_step, 4),
            "eigenvalue_s": round(t_eig, 3), "lanczos_iterations": iterations, "hvp_in_steps":
            round(t_eig / statistics.median(iterations) / t_step, 2), "auto_every": every,
            "diagnostic_share": round(share, 4)}


def demo(epochs: int | None) -> dict:
    """The demo's search, whole, with the time inside the eigenvalue measured around each call."""
    config = demo_config().replace(train_epochs=0, **({"epochs": epochs} if epochs else {}))
    spent = []
    original = DifferentiableSearch.hessian_eigenvalue

    def timed(self):
        start = time.perf_counter()
        value = original(self)
        spent.append(time.perf_counter() - start)
        return value

    DifferentiableSearch.hessian_eigenvalue = timed
    try:
        start = time.perf_counter()
        DifferentiableSearch(config, None, quiet=True).run()
        total = time.perf_counter() - start
    finally:
        DifferentiableSearch.hessian_eigenvalue = original
    return {"scenario": "demo", "space": config.space, "epochs": config.epochs, "hessian_every": config.hessian_every,
            "eigenvalues": len(spent), "eigenvalue_s": round(sum(spent), 2), "search_s": round(total, 2),
            "diagnostic_share": round(sum(spent) / total, 4)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["demo", "digits", "protocol"], default=None)
    parser.add_argument("--repeats", type=int, default=3, help="eigenvalues per scenario (3 steps each between)")
    parser.add_argument("--demo-epochs", type=int, default=None, help="shorten the demo (default: its 30)")
    parser.add_argument("--space", choices=["nb201", "darts"], default=None, help="one space only (by parts)")
    parser.add_argument("--hessian-order", type=int, choices=[1, 2], default=1, help="the Hessian's hessian_order")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    spaces, order = [args.space] if args.space else ["nb201", "darts"], {"hessian_order": args.hessian_order}
    if args.only in (None, "demo"):
        print(json.dumps(demo(args.demo_epochs)), flush=True)
    if args.only in (None, "digits"):
        digits = load_dataset("digits", None, quiet=True)
        steps = len(digits.train_y) // 2 // 64
        for space in spaces:
            print(json.dumps(by_parts(f"digits-{space}", {"space": space, "data": "digits", **order}, digits, steps,
                                      args.repeats)), flush=True)
    if args.only in (None, "protocol"):
        data = random_cifar(3 * args.repeats + 2)
        for space in spaces:
            print(json.dumps(by_parts(f"protocol-{space}", {"space": space, "data": "synthetic", **order}, data,
                                      PROTOCOL_STEPS, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

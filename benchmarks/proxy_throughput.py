"""Proxy scoring throughput of the whole machine: cells per second of each way to run the proxy study.

    python benchmarks/proxy_throughput.py --cells 24 --rounds 2 \
        --data-dir ../shared/data/cifar10/cifar10-jpeg.tar.gz

Scores the first ``--cells`` of the proxy study's 1,000 cells (as benchmarks/proxy_speed.py: every proxy,
the zero-cost model, cell i from seed + i on batch i of the augmented loader) with each setting in turn, the
settings' order rotating from round to round:

    reference/T  the reference path (a copy and a forward per pass) on T torch threads, one cell at a time
    fast/T       the fast path on T threads, one cell at a time ("all": every usable CPU, torch's default)
    fast/xW      the fast path with W worker processes of one thread each (``--workers W`` of the CLI)

Prints cells per second per setting and round (batches drawn included), each setting's median ratio to the
first, and how many cells' scores differ from those of the reference path on one thread and on every
CPU (the thread count changes the convolutions' rounding; a worker runs one thread). Each worker process
starts from a copy of this one and touches its memory afresh (page faults) over its first few cells: rate
the workers over a few dozen cells, not a handful.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from proxy_speed import Study, same  # noqa: E402

from archsearch.studies.pool import torch_threads, usable_cpus  # noqa: E402
from archsearch.studies.proxy_scores import DEFAULT_PROXIES, score_architectures  # noqa: E402


def parse_setting(text: str) -> tuple[str, int, int]:
    """'fast/2' -> ("fast", 2 threads, 1 worker); 'fast/x2' -> ("fast", 1, 2); 'all' threads: every CPU."""
    path, _, how = text.partition("/")
    if how.startswith("x"):
        return path, 1, int(how[1:])
    return path, usable_cpus() if how in ("", "all") else int(how), 1


def run(study: Study, setting: str) -> tuple[float, list[dict]]:
    path, threads, workers = parse_setting(setting)
    start = time.perf_counter()
    with torch_threads(threads):
        rows = score_architectures(study.space, study.cells, study.proxies, None, None, seed=study.seed,
                                   num_classes=study.num_classes, network_options=study.options,
                                   batches=study.batches, size_network_options={}, path=path, workers=workers)
    return len(rows) / (time.perf_counter() - start), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=24)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxies", default=",".join(DEFAULT_PROXIES))
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 (else a seeded random batch per cell)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", default="reference/all,fast/all,fast/x{cpus},reference/1,fast/1",
                        help="comma-separated settings, the first the baseline (default %(default)s)")
    args = parser.parse_args()
    study = Study(args)
    settings = args.settings.format(cpus=usable_cpus()).split(",")
    print(f"{len(study.cells)} cells, {usable_cpus()} usable CPUs, settings: {', '.join(settings)}", flush=True)
    rates: dict[str, list[float]] = {s: [] for s in settings}
    scores: dict[str, list[dict]] = {}
    for r in range(args.rounds):
        order = settings[r % len(settings):] + settings[:r % len(settings)]
        for setting in order:
            rate, rows = run(study, setting)
            rates[setting].append(rate)
            scores.setdefault(setting, rows)
            print(f"  round {r + 1} {setting:>14}: {rate:.3f} cells/s", flush=True)
    oracles = {name: scores.get(name) or run(study, name)[1] for name in ("reference/1", "reference/all")}
    base = settings[0]
    for setting in settings:
        ratios = [a / b for a, b in zip(rates[setting], rates[base])]
        differ = {name: sum(not same(a, b, study.proxies) for a, b in zip(scores[setting], oracle))
                  for name, oracle in oracles.items()}
        print(f"{setting:>14}: median {statistics.median(rates[setting]):.3f} cells/s, "
              f"{statistics.median(ratios):.2f}x {base} (rounds {' '.join(f'{x:.2f}' for x in ratios)}); cells with "
              f"other scores than " + ", ".join(f"{name} {n}" for name, n in differ.items())
              + f" (of {len(study.cells)})")


if __name__ == "__main__":
    main()

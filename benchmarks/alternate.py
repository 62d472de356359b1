"""Run timing commands in alternation, each in a fresh process, and compare their medians round by round.

    python benchmarks/alternate.py --rounds 3 \
        --side "ours=python benchmarks/search_step.py --space darts --method darts --steps 3 --warmup 1" \
        --side "xautodl=/tmp/peer-venv/bin/python benchmarks/xautodl_darts_step.py --order 1 --steps 3 --warmup 1"

On a shared or virtualised host the same step drifts by 15-30% from one quarter-hour to the next, so two
figures compare only when taken side by side: each round runs every side once, the first side rotating
from round to round, and the ratios are taken within a round. A side's output is read for its median
seconds per step and its peak memory, in either format: search_step.py's JSON (``median_s``,
``peak_rss_mb``) or the peer scripts' text (``median s/search-step = X``, ``peak RSS ... Y MiB``, or where a
line gives two peaks, the one ``after steps Y MiB``). The
first side is compared with each of the others. Prints one JSON line per run, then a summary line.

A process started right after a large one (xautodl's DARTS step peaks at 9 GB) runs 10-25% slower for a
while, as the host takes the freed memory back; with rotation that penalises whichever side follows the
largest. ``--pause S`` sleeps S seconds before every run, for every side alike.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import time

_SECONDS = (re.compile(r'"median_s":\s*([0-9.]+)'), re.compile(r"median s/search-step = ([0-9.]+)"))
#: the NB201 peer script prints its peak after the build and "after steps": the latter is the step's peak
_MEMORY = (re.compile(r'"peak_rss_mb":\s*([0-9.]+)'), re.compile(r"after steps ([0-9.]+) MiB"),
           re.compile(r"peak RSS[^0-9]*([0-9.]+) MiB"))


def _first(patterns, text: str) -> float | None:
    for pattern in patterns:
        found = pattern.findall(text)
        if found:
            return float(found[-1])
    return None


def run(command: str) -> dict:
    done = subprocess.run(shlex.split(command), capture_output=True, text=True)
    text = done.stdout + done.stderr
    seconds, memory = _first(_SECONDS, text), _first(_MEMORY, text)
    if done.returncode or seconds is None:
        raise SystemExit(f"`{command}` failed (exit {done.returncode}):\n{text[-2000:]}")
    return {"s": seconds, "mb": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", action="append", required=True, metavar="NAME=COMMAND",
                        help="a name and the command that times it (two or more; the first is compared)")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds slept before every run")
    args = parser.parse_args()
    sides = dict(side.split("=", 1) for side in args.side)
    if len(sides) < 2:
        raise SystemExit("give two or more --side NAME=COMMAND")
    names = list(sides)
    results = {name: [] for name in names}
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(args.pause)
            result = run(sides[name])
            results[name].append(result)
            print(json.dumps({"round": round_ + 1, "side": name, **result}), flush=True)
    first = names[0]
    summary = {name: {"median_s": statistics.median(r["s"] for r in results[name]),
                      "peak_mb": max((r["mb"] for r in results[name] if r["mb"] is not None), default=None)}
               for name in names}
    for other in names[1:]:
        time_ratios = [a["s"] / b["s"] for a, b in zip(results[first], results[other])]
        summary[f"{first}/{other}"] = {
            "time_ratio_per_round": [round(r, 3) for r in time_ratios],
            "time_ratio_median": round(statistics.median(time_ratios), 3),
            "memory_ratio": (None if summary[other]["peak_mb"] is None or summary[first]["peak_mb"] is None
                             else round(summary[first]["peak_mb"] / summary[other]["peak_mb"], 3))}
    print(json.dumps(summary), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Time and memory to load the shipped NAS-Bench-201 table and answer one query, in a fresh process.

    python benchmarks/nb201_load.py [--repeats 5]

Prints the fastest and median wall time over the repeats and the peak resident memory (VmHWM).
Target: under a second and 200 MB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CODE = ("import re, time; t = time.perf_counter(); "
        "from archsearch.groundtruth.nb201 import NB201Table; NB201Table.load().query(0); "
        "seconds = time.perf_counter() - t; "
        "print(seconds, re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
        runs.append((float(out[0]), int(out[1]) / 1024))
    seconds = [s for s, _ in runs]
    print(f"NAS-Bench-201 table, import + load + one query in a fresh process: fastest {min(seconds):.3f} s, "
          f"median {statistics.median(seconds):.3f} s over {args.repeats}; peak memory {max(m for _, m in runs):.0f} MB "
          "(targets: < 1 s, < 200 MB)")


if __name__ == "__main__":
    main()

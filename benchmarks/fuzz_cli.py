"""Systematic attack on the ``archsearch`` command line: generated bad (and good) input through every command.

The promise under test: every bad input ends with one stderr line starting 'archsearch: error:' and exit code
2, no traceback; valid input exits 0; invalid values are never silently used; nothing already written is lost.
Each case is a command line labelled by an independent oracle (clifuzz/oracle.py) as valid, invalid or either,
run in a forked child of one parent that imported the package once, and classified:

  clean      an invalid case ended with exit 2 and one 'archsearch: error:' line
  accepted   a valid case exited 0
  defect     traceback, crash (signal), hang, wrong exit code, multi-line or malformed error, invalid input
             accepted, valid input rejected, or damage to files the case could touch

    python benchmarks/fuzz_cli.py --cases 10000 --jobs 2 --show 3 --json fuzz.json
    python benchmarks/fuzz_cli.py --cases 500 --surface search --surface resume --seed 7
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: children must not inherit thread pools
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if (HERE.parent / "src" / "archsearch").is_dir():  # the checkout's package, as the tests use it
    sys.path.insert(0, str(HERE.parent / "src"))

from clifuzz.fixtures import NB201_BEST, SHARED, Env, make_data_sources  # noqa: E402
from clifuzz.generate import DARTS_TINY, SURFACES, TINY, generate  # noqa: E402
from clifuzz.oracle import VALID  # noqa: E402
from clifuzz.runner import DEFECT_KINDS, Case, Result, kill_strays, preload, run_cases  # noqa: E402

#: tiny real runs made once per attack, whose copies --resume cases damage
SETUP_RUNS = {
    "search": ["search", "--method", "darts", *[f"{k}={v}" for k, v in TINY.items()]],
    "search-gdas": ["search", "--method", "gdas", *[f"{k}={v}" for k, v in TINY.items()]],
    "search-balenas": ["search", *[f"{k}={v}" for k, v in TINY.items()]],
    "search-darts": ["search", "--method", "darts", "--space", "darts",
                     *[f"{k}={v}" for k, v in {**TINY, **DARTS_TINY}.items() if k != "N"]],
    "train": ["train", NB201_BEST, "--epochs", "1", "--limit-train", "64", "--limit-test", "64", "--C", "2", "--N", "1"],
    "bench": ["bench", "--strategies", "random", "--queries", "3", "--seeds", "1"],
}


def make_workspace(workdir: str | None = None) -> Env:
    """A scratch folder with the fixtures; the dataset cache goes to a folder of its own inside it."""
    root = Path(tempfile.mkdtemp(prefix="archsearch-fuzz-", dir=workdir))
    env = Env(root, is_root=os.geteuid() == 0)
    env.fix.mkdir()
    try:  # device cases use a null-device node of their own: the real /dev/null is never an --out
        os.mknod(root / "probe", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        env.can_mknod = True
        os.unlink(root / "probe")
    except OSError:
        pass
    cifar, ptb = SHARED / "cifar10" / "cifar10-jpeg.tar.gz", SHARED / "ptb" / "ptb.tar.gz"
    env.shared_cifar = cifar if cifar.is_file() else None
    env.shared_ptb = ptb if ptb.is_file() else None
    # asked in another process: CUDA initialised here would be inherited, broken, by every forked case
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count(), "
                            "int(torch.backends.mps.is_available()))"], capture_output=True, text=True)
    if probe.returncode == 0:
        cuda, mps = probe.stdout.split()
        env.cuda_devices, env.mps = int(cuda), mps == "1"
    os.environ["ARCHSEARCH_CACHE"] = str(root / "cache")
    make_data_sources(env)
    env.runs = {name: env.fix / f"run-{name}" for name in SETUP_RUNS}
    preload()
    return env


def make_runs(env: Env, jobs: int, timeout: float) -> None:
    """The tiny real runs that --resume and --out cases copy, made by the command line itself."""
    setup = [Case("setup", [*argv, "--out", str(env.runs[name]), "--quiet"], VALID, name, id=900_000 + i)
             for i, (name, argv) in enumerate(SETUP_RUNS.items())]
    for result in run_cases(setup, env, jobs=jobs, timeout=max(timeout, 120)):
        if result.outcome != "accepted":
            raise SystemExit(f"setup run {result.case.why} failed ({result.defects}): {shlex.join(result.case.argv)}")


def _needs_runs(case: Case) -> bool:
    return any(isinstance(arg, str) and arg.startswith("run:") for op in case.ops for arg in op[2:])


def run_fuzz(cases: int = 1000, seed: int = 0, surfaces: list[str] | None = None, jobs: int = 2,
             timeout: float = 45.0, progress: bool = False, keep: bool = False,
             only_invalid: bool = False, ids: list[int] | None = None) -> tuple[list[Result], Env, float]:
    """Generate and run ``cases`` cases; returns (results, workspace, wall seconds). ``only_invalid``: bad
    input only, and none that needs the tiny real runs (fast: for the test suite)."""
    start = time.perf_counter()
    env = make_workspace()
    try:
        accept = (lambda c: c.label == "invalid" and not _needs_runs(c)) if only_invalid else None
        todo = generate(env, len(ids) if ids is not None else cases, seed, surfaces, accept, ids)
        if any(_needs_runs(c) for c in todo):
            make_runs(env, jobs, timeout)
        done = Counter()

        def report(result: Result) -> None:
            done["cases"] += 1
            done["defects"] += result.outcome == "defect"
            if progress and done["cases"] % 100 == 0:
                rate = done["cases"] / (time.perf_counter() - start)
                print(f"  {done['cases']}/{len(todo)} cases, {done['defects']} defects, {rate:.2f} cases/s",
                      file=sys.stderr, flush=True)

        results = run_cases(todo, env, jobs=jobs, timeout=timeout, progress=report)
    finally:
        kill_strays()
        if not keep:
            _remove_tree(env.root)
    return results, env, time.perf_counter() - start


def _remove_tree(root: Path) -> None:
    for path in root.rglob("*"):  # folders made read-only or unreadable by cases
        if path.is_dir() and not path.is_symlink():
            os.chmod(path, 0o755)
    shutil.rmtree(root, ignore_errors=True)


# -- grouping and reporting ------------------------------------------------------------------------------
def root_cause(kind: str, result: Result) -> str:
    """A key under which defects of one cause fall together."""
    if kind == "traceback":
        return f"{(result.exception or 'traceback').split(':')[0]} at {result.where}"
    if kind == "invalid accepted":
        return f"{result.case.surface}: {_normalise(result.case.why)}"
    if kind == "valid rejected":
        return f"{result.case.surface}: {_normalise(result.error_line)}"
    if kind == "hang":
        return f"{result.case.surface}: {_normalise(result.case.why) or 'hang'}"
    detail = dict(result.defects)[kind]
    if kind == "file damage":  # the first problem, its path left out, its modes kept
        first = detail.split("; ")[0]
        return re.sub(r"^.+?(?=: | removed| left behind| written)", "PATH", first)
    return f"{kind}: {_normalise(detail)}"


def _normalise(text: str) -> str:
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", text)
    text = re.sub(r"/[^\s:;,)]+", "PATH", text)
    return text[:140]


def short_argv(case: Case, root: Path, width: int = 220) -> str:
    text = "archsearch " + shlex.join(case.argv).replace(str(root), "$WORK")
    return text if len(text) <= width else text[: width - 12] + f" … ({len(text)} chars)"


def summarise(results: list[Result], env: Env, wall: float, args, out=sys.stdout) -> dict:
    outcomes = Counter(r.outcome for r in results)
    kinds, surfaces, groups = Counter(), defaultdict(Counter), defaultdict(list)
    for r in results:
        surfaces[r.case.surface]["cases"] += 1
        surfaces[r.case.surface][r.outcome] += 1
        for kind, _ in r.defects:
            kinds[kind] += 1
            surfaces[r.case.surface]["kind:" + kind] += 1
            groups[(kind, root_cause(kind, r))].append(r)
    notes = Counter(re.sub(r" (on success|left) .*", r" \1", n) for r in results for n in r.notes)
    labels = Counter(r.case.label for r in results)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"archsearch CLI fuzz: {len(results)} cases, seed {args.seed}, {args.jobs} jobs, timeout {args.timeout:g} s, "
      f"CUDA devices {env.cuda_devices}, running as {'root' if env.is_root else 'user'}")
    p(f"oracle labels: {labels['invalid']} invalid, {labels['valid']} valid, {labels['either']} either")
    p(f"wall time {wall:.0f} s ({wall / max(1, len(results)):.2f} s per case)\n")
    p(f"{'outcome':34s}{'cases':>7s}")
    for name in ("clean", "accepted", "refused (either)", "accepted (either)", "defect"):
        p(f"{name:34s}{outcomes[name]:7d}")
    p(f"\n{'defects by kind':34s}{'cases':>7s}")
    for kind in DEFECT_KINDS:
        if kinds[kind]:
            p(f"{kind:34s}{kinds[kind]:7d}")
    p(f"\n{'surface':20s}{'cases':>7s}{'clean':>7s}{'accept':>7s}{'either':>7s}{'defect':>7s}   defect kinds")
    for name in sorted(surfaces, key=lambda n: -surfaces[n]["defect"]):
        s = surfaces[name]
        which = ", ".join(f"{k[5:]} {v}" for k, v in s.most_common() if k.startswith("kind:"))
        p(f"{name:20s}{s['cases']:7d}{s['clean']:7d}{s['accepted']:7d}"
          f"{s['refused (either)'] + s['accepted (either)']:7d}{s['defect']:7d}   {which}")
    p(f"\nroot causes (kind, key: cases), most frequent first")
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    for (kind, key), members in ranked[: args.groups]:
        p(f"{len(members):6d}  [{kind}] {key}")
        p(f"        e.g. {short_argv(members[0].case, env.root, 200)}")
    if len(ranked) > args.groups:
        p(f"  ... {len(ranked) - args.groups} more groups (see --json)")
    if notes:
        p("\nminor notes (not defects)")
        for note, count in notes.most_common():
            p(f"{count:6d}  {note}")
    if args.show:
        p("\nexamples by kind")
        for kind in DEFECT_KINDS:
            examples = [r for r in results if kind in dict(r.defects)][: args.show]
            for r in examples:
                p(f"  [{kind}] {short_argv(r.case, env.root)}")
                p(f"      oracle: {r.case.label} ({r.case.why}); got exit {r.exit}: {dict(r.defects)[kind][:200]}")
    return {"cases": len(results), "seed": args.seed, "surfaces": args.surface, "wall_seconds": round(wall, 1),
            "outcomes": dict(outcomes), "defects_by_kind": dict(kinds),
            "defects_by_surface": {n: s["defect"] for n, s in surfaces.items()},
            "root_causes": [{"kind": k, "key": key, "cases": len(m),
                             "example": short_argv(m[0].case, env.root, 10_000)} for (k, key), m in ranked]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="number of generated cases (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--surface", action="append", choices=list(SURFACES), help="only these surfaces (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run in parallel (default 2)")
    parser.add_argument("--timeout", type=float, default=45.0, help="seconds before a case counts as a hang")
    parser.add_argument("--show", type=int, default=0, help="print N example defects per kind")
    parser.add_argument("--groups", type=int, default=40, help="root-cause groups printed (default 40)")
    parser.add_argument("--json", default=None, help="write every result and the summary to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (with the folders of the defect cases)")
    parser.add_argument("--only-invalid", action="store_true",
                        help="bad input only, none that needs real runs to damage (the test suite's sample)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--rerun", default=None, metavar="JSON",
                        help="run again the defect cases of an earlier --json report (its seed and surfaces)")
    args = parser.parse_args(argv)
    ids = None
    if args.rerun:
        earlier = json.loads(Path(args.rerun).read_text())
        ids = [r["case"]["id"] for r in earlier["results"] if r["defects"]]
        args.seed, args.surface = earlier["summary"]["seed"], earlier["summary"].get("surfaces")
        print(f"rerunning {len(ids)} defect cases of {args.rerun} (seed {args.seed})", file=sys.stderr)
    sys.stdout.reconfigure(errors="backslashreplace")  # argv of bytes that are not UTF-8 get printed too
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed attack still reports what it did
    results, env, wall = run_fuzz(args.cases, args.seed, args.surface, args.jobs, args.timeout,
                                  progress=not args.quiet, keep=args.keep, only_invalid=args.only_invalid,
                                  ids=ids)
    summary = summarise(results, env, wall, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "results": [r.as_dict(env.root) for r in results]},
                                              indent=1))
    if args.keep:
        print(f"\nscratch folder kept: {env.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

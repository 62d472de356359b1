"""kill -9 real runs at chosen or random points, resume them, and compare with uninterrupted runs.

    python benchmarks/fault_injection.py [--kills 24] [--seed 0] [--plan random|fixed] [--keep DIR]

Runs a tiny deterministic DARTS, BaLeNAS and GDAS search and a tiny training (``archsearch train``).
Each is killed with SIGKILL several times in a row, resumed with ``--resume`` after every kill, and
finally compared with the same run done in one go in a fresh process. Kill points: a weight step in
the middle of an epoch, a wall-clock time, and every write of a result (checkpoint, metrics line,
config, genotype, plots): half-way through its bytes, after its bytes but before the rename, between
the two renames that keep the previous checkpoint, or right after it. Prints:

    kills               processes killed
    resumes             processes that continued a killed run (and how many restarted one killed
                        before it had written its config)
    identical resumes   resumes whose output agreed with the uninterrupted run (what each saw of
                        metrics.jsonl; a finished run: every file, checkpoints included)
    partial files       files found torn under their final names after a kill, or left behind
                        (temporary files, torn lines) after a finished run

To kill a process cheaply many times, a "zygote" process imports archsearch once and forks one child
per run; the child wraps ``archsearch.utils.io._write_all`` / ``_replace`` (or the SGD step) to
SIGKILL itself at the chosen point and then calls ``archsearch.cli.main``. The uninterrupted runs are
fresh ``python -m archsearch.cli`` processes, so they share nothing with the zygote.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GOOD_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SEARCH_FLAGS = ["--data", "digits", "--deterministic", "--quiet", "--seed", "3", "C=4", "N=1", "epochs=3",
                "batch_size=32", "hessian_iters=3", "limit_train=300"]
TRAIN_FLAGS = ["--data", "digits", "--epochs", "3", "--C", "4", "--N", "1", "--limit-train", "300", "--limit-test",
               "100", "--deterministic", "--quiet", "--seed", "3"]


def search_argv(method: str, out, *overrides) -> list[str]:
    """The tiny search; an override of one of its keys replaces it (a key may be given once)."""
    keys = {item.partition("=")[0] for item in overrides}
    flags = [flag for flag in SEARCH_FLAGS if flag.partition("=")[0] not in keys]
    return ["search", "--method", method, *flags, *overrides, "--out", str(out)]


def train_argv(out, *overrides) -> list[str]:
    return ["train", GOOD_CELL, "batch_size=32", *overrides, *TRAIN_FLAGS, "--out", str(out)]


#: name -> (argv of a new run into OUT, argv of its resume)
RUNS = {
    **{method: (search_argv(method, "OUT"), ["search", "--resume", "OUT", "--quiet"])
       for method in ("darts", "balenas", "gdas")},
    "train": (train_argv("OUT"), ["train", "--resume", "OUT", "--quiet"]),
}
SEARCH_FILES = ["checkpoint.pt", "metrics.jsonl", "metrics.csv", "config.yaml", "genotype.json", "op_weights.png",
                "hessian_eigenvalue.png", "skip_count.png", "ground_truth.png"]
TRAIN_FILES = ["checkpoint.pt", "metrics.jsonl", "metrics.csv", "config.yaml", "result.json"]

# A kill point: (kind, file, n, fraction). kinds: "step" (before the n-th weight step), "write" (after
# fraction of the bytes of the n-th write of file), "rename" (the n-th write's bytes are all there, the
# rename over file not done: for checkpoint.pt after the previous one was moved to .prev), "renamed"
# (right after the n-th rename over file, or the n-th append), "timer" (n seconds of wall clock).
# n counts within the one process that is killed.
#: the kill points of the test: every kind, every file, at the start, in epochs and at the end (the timer
#: fires 0.2 s into a process that has two epochs and the plots left to do: before the first of them ends
#: on any machine seen, since the later points assume it did not; at 0.5 s a fast machine had finished it)
FIXED_PLAN = {
    "darts": [("write", "config.yaml", 1, 0.5), ("step", None, 7, None), ("timer", None, 0.2, None),
              ("renamed", "metrics.jsonl", 1, None),
              ("write", "checkpoint.pt", 2, 0.5), ("rename", "checkpoint.pt", 1, None),
              ("write", "op_weights.png", 1, 0.5), ("renamed", "genotype.json", 2, None)],
    "balenas": [("step", None, 3, None), ("write", "metrics.jsonl", 2, 0.5), ("rename", "checkpoint.pt", 2, None),
                ("write", "hessian_eigenvalue.png", 1, 0.3), ("write", "genotype.json", 1, 0.5)],
    "gdas": [("step", None, 9, None), ("write", "checkpoint.pt", 1, 0.9), ("renamed", "checkpoint.pt", 1, None),
             ("rename", "skip_count.png", 1, None), ("renamed", "op_weights.png", 1, None)],
    "train": [("step", None, 4, None), ("write", "metrics.jsonl", 1, 0.5), ("rename", "checkpoint.pt", 2, None),
              ("write", "checkpoint.pt", 1, 0.5), ("write", "result.json", 1, 0.5)],
}


#: what a resume of a finished run still writes
FINISHED_FILES = {"search": ["config.yaml", "genotype.json", "op_weights.png", "hessian_eigenvalue.png",
                             "skip_count.png", "ground_truth.png"], "train": ["config.yaml", "result.json"]}


def random_point(rng: random.Random, name: str, finished: bool) -> tuple:
    """A kill point the next process of run ``name`` reaches (most of the time)."""
    kind = rng.choice(["write", "write", "rename", "renamed"] + ([] if finished else ["step", "timer"]))
    if kind == "step":
        return ("step", None, rng.randint(1, 15), None)
    if kind == "timer":
        return ("timer", None, round(rng.uniform(0.05, 2.0), 3), None)
    family = "train" if name == "train" else "search"
    file = rng.choice(FINISHED_FILES[family] if finished else TRAIN_FILES if name == "train" else SEARCH_FILES)
    n = rng.randint(1, 2) if file in ("checkpoint.pt", "metrics.jsonl", "genotype.json") else 1
    return (kind, file, n, round(rng.uniform(0.05, 0.95), 3) if kind == "write" else None)


# ---- the zygote: one process that has imported everything, forking one child per run -----------------
def _zygote() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import torch

    import archsearch.cli as cli
    import archsearch.evaluate.train  # noqa: F401
    import archsearch.report.plots  # noqa: F401
    import archsearch.search.runner  # noqa: F401
    import archsearch.utils.io as io
    import sklearn.datasets  # noqa: F401
    from archsearch.utils.tensorboard import tensorboard_installed

    if tensorboard_installed():  # what a run imports to log to TensorBoard
        import torch.utils.tensorboard  # noqa: F401

    cli.build_parser()
    torch.use_deterministic_algorithms(True)  # imports what deterministic mode needs, then back
    torch.use_deterministic_algorithms(False)
    while line := sys.stdin.readline():
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            code = 70
            try:
                _arm(job["point"], io, torch)
                code = cli.main(job["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        status = _wait(pid, job["point"])
        protocol.write(json.dumps(status) + "\n")


def _wait(pid: int, point) -> dict:
    deadline = time.monotonic() + point[2] if point and point[0] == "timer" else None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG if deadline else 0)
        if done:
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = None
            continue
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status), "code": None}
    return {"signal": None, "code": os.WEXITSTATUS(status)}


def _arm(point, io, torch) -> None:
    """Make this process SIGKILL itself at ``point``."""
    if not point or point[0] == "timer":
        return
    kind, file, n, fraction = point
    seen = {"n": 0}

    def due(name) -> bool:
        if file is not None and name != file:
            return False
        seen["n"] += 1
        return seen["n"] == n

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if kind == "step":
        step = torch.optim.SGD.step

        def killing_step(self, *args, **kwargs):
            if due(None):
                die()
            return step(self, *args, **kwargs)

        torch.optim.SGD.step = killing_step
    elif kind in ("write", "renamed") and file == "metrics.jsonl" or kind == "write":
        write_all = io._write_all

        def killing_write(fd, data, path):
            if not due(Path(path).name):
                return write_all(fd, data, path)
            write_all(fd, data[:max(1, int(len(data) * (fraction or 1.0)))] if kind == "write" else data, path)
            die()

        io._write_all = killing_write
    else:  # "rename" before, "renamed" after the rename over file
        replace = io._replace

        def killing_replace(source, target):
            if not due(Path(target).name):
                return replace(source, target)
            if kind == "renamed":
                replace(source, target)
            die()

        io._replace = killing_replace


class Zygote:
    def __init__(self, env: dict):
        self.process = subprocess.Popen([sys.executable, __file__, "--zygote"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)

    def run(self, argv: list[str], point, log: Path, timeout: float = 300) -> dict:
        self.process.stdin.write(json.dumps({"argv": argv, "point": point, "log": str(log)}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"{argv} ran past {timeout} s")
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ---- what a run directory must look like --------------------------------------------------------------
def partial_files(out: Path, finished: bool) -> list[str]:
    """Files torn under their final names; once the run finished, also what a killed writer left."""
    import yaml

    from archsearch.errors import CheckpointError
    from archsearch.utils.checkpoint import decode
    from archsearch.utils.io import TEMP_PATTERN
    from archsearch.utils.rundir import LOCK_NAME

    found = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != LOCK_NAME):
        data = path.read_bytes()
        if TEMP_PATTERN.match(path.name):
            if finished:
                found.append(f"{path}: temporary file left")
            continue
        try:
            if path.suffix == ".pt":
                decode(data, path)
            elif path.suffix == ".json":
                json.loads(data)
            elif path.suffix == ".yaml":
                assert isinstance(yaml.safe_load(data), dict)
            elif path.suffix == ".png":
                assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
            elif path.suffix == ".jsonl":
                lines = data.split(b"\n")
                for line in lines[:-1]:
                    json.loads(line)
                if finished and lines[-1]:
                    found.append(f"{path}: torn last line")
        except (CheckpointError, ValueError, AssertionError) as err:
            found.append(f"{path}: {type(err).__name__}")
    return found


def _strip(obj, drop=("seconds", "train_seconds", "out_dir")):
    """``obj`` without wall-clock times and the run's own path."""
    if isinstance(obj, dict):
        return {k: _strip(v, drop) for k, v in obj.items() if k not in drop}
    if isinstance(obj, (list, tuple)):
        return [_strip(v, drop) for v in obj]
    return obj


def _same(a, b, where: str = "") -> str | None:
    """None when ``a`` and ``b`` (nested states with tensors) are identical, else where they first differ."""
    import numpy as np
    import torch

    if torch.is_tensor(a) or torch.is_tensor(b):
        ok = torch.is_tensor(a) and torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
        return None if ok else where
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return None if np.array_equal(a, b) else where
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where} keys"
        return next((d for k in a if (d := _same(a[k], b[k], f"{where}.{k}"))), None)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where} length"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := _same(x, y, f"{where}[{i}]"))), None)
    return None if a == b or (a != a and b != b) else where


def _csv_rows(data: bytes) -> list[dict]:
    """metrics.csv's rows without the wall-clock column."""
    import csv
    import io

    return [_strip(row) for row in csv.DictReader(io.StringIO(data.decode(), newline=""))]


def metrics_lines(out: Path) -> list[dict]:
    from archsearch.utils.io import read_jsonl

    return _strip(read_jsonl(out / "metrics.jsonl"))


def differences(run: Path, reference: Path) -> list[str]:
    """Every way ``run`` differs from ``reference`` (wall-clock times, the directory's path and TensorBoard's
    logs, one event file per process by design, aside)."""
    from archsearch.utils.checkpoint import decode
    from archsearch.utils.rundir import LOCK_NAME
    from archsearch.utils.tensorboard import TENSORBOARD_DIR

    def compared(p: Path, root: Path) -> bool:
        return p.is_file() and p.name != LOCK_NAME and TENSORBOARD_DIR not in p.relative_to(root).parts

    names = {p.relative_to(run) for p in run.rglob("*") if compared(p, run)}
    expected = {p.relative_to(reference) for p in reference.rglob("*") if compared(p, reference)}
    found = [f"files {sorted(map(str, names ^ expected))}"] if names != expected else []
    for name in sorted(names & expected):
        a, b = (run / name).read_bytes(), (reference / name).read_bytes()
        if name.suffix == ".pt":
            diff = _same(_strip(decode(a, name)), _strip(decode(b, name)))
        elif name.suffix == ".json":
            diff = None if _strip(json.loads(a)) == _strip(json.loads(b)) else ""
        elif name.suffix == ".jsonl":
            diff = None if metrics_lines(run) == metrics_lines(reference) else ""
        elif name.suffix == ".csv":
            diff = None if _csv_rows(a) == _csv_rows(b) else ""
        else:
            diff = None if a == b else ""
        if diff is not None:
            found.append(f"{name}{' at ' + diff if diff else ''}")
    return found


# ---- a campaign ---------------------------------------------------------------------------------------
@dataclass
class Report:
    kills: int = 0
    resumes: int = 0
    restarts: int = 0
    identical: int = 0
    partial: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    runs_identical: list[str] = field(default_factory=list)
    points: dict[str, list] = field(default_factory=dict)


def _argv(template: list[str], out: Path) -> list[str]:
    return [str(out) if a == "OUT" else a for a in template]


def _finished(name: str, out: Path) -> bool:
    return (out / ("result.json" if name == "train" else "genotype.json")).exists()


def run_chain(zygote: Zygote, name: str, points: list, out: Path, reference: Path, report: Report,
              more=None) -> None:
    """Start run ``name`` into ``out``, kill it at each point in turn (resuming after each kill), resume it
    to the end, and check every step against ``reference``. ``more()`` may supply further points."""
    new, resume = RUNS[name]
    expected = metrics_lines(reference)
    log = out.parent / f"{name}.log"
    queue, killed, resumed = list(points), False, False
    report.points[name] = []
    while True:
        point = queue.pop(0) if queue else (more(_finished(name, out)) if more else None)
        started = _argv(resume if (out / "config.yaml").exists() else new, out)
        if killed:
            if "--resume" in started:
                report.resumes += 1
                resumed = True
            else:
                report.restarts += 1
                resumed = False
        status = zygote.run(started, point, log)
        died = status["signal"] == signal.SIGKILL
        report.points[name].append((point, "killed" if died else f"exit {status['code']}"))
        if not died and status["code"] != 0:
            report.failures.append(f"{name}: {' '.join(started)} exited {status['code']} (see {log})")
            return
        report.partial += partial_files(out, finished=not died)
        seen = metrics_lines(out)
        agrees = seen == expected[:len(seen)]
        if not agrees:
            report.failures.append(f"{name}: metrics after {point} differ from the uninterrupted run's")
        if not died and point is None:  # the last, clean resume: the whole run must be the reference
            diffs = differences(out, reference)
            report.failures += [f"{name}: {d}" for d in diffs]
            agrees = agrees and not diffs
            if agrees:
                report.runs_identical.append(name)
        if killed and resumed and agrees:
            report.identical += 1
        killed = died
        report.kills += died
        if point is None and not died:
            return


def campaign(workdir: Path, kills: int = 24, seed: int = 0, plan: str = "random", names=tuple(RUNS),
             references: dict[str, Path] | None = None, env: dict | None = None) -> Report:
    """Kill and resume each run of ``names``; ``references``: their uninterrupted run directories (by
    default made here, in fresh processes, alongside the killed runs)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    workdir.mkdir(parents=True, exist_ok=True)
    references, running = dict(references or {}), {}
    for name in names:
        if name not in references:
            references[name] = out = workdir / "reference" / name
            running[name] = subprocess.Popen([sys.executable, "-m", "archsearch.cli", *_argv(RUNS[name][0], out)],
                                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    report = Report()
    rng = random.Random(seed)
    zygote = Zygote(env)
    try:
        for i, name in enumerate(names):
            process = running.get(name)
            if process is not None and process.wait(timeout=600) != 0:
                raise RuntimeError(f"the uninterrupted {name} run failed: {process.stderr.read()}")
            out = workdir / "killed" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            if plan == "fixed":
                run_chain(zygote, name, FIXED_PLAN[name], out, references[name], report)
                continue
            quota = kills // len(names) + (i < kills % len(names))
            target = report.kills + quota
            tries = {"n": 0}

            def more(finished, name=name, target=target, tries=tries):
                tries["n"] += 1
                return (random_point(rng, name, finished) if report.kills < target and tries["n"] <= 4 * quota
                        else None)

            run_chain(zygote, name, [], out, references[name], report, more)
    finally:
        zygote.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24, help="kills in all, spread over the runs (random plan)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plan", choices=("random", "fixed"), default="random",
                        help="random kill points, or the fixed ones of the test")
    parser.add_argument("--keep", default=None, help="keep the run directories here")
    parser.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.zygote:
        return _zygote()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = campaign(Path(args.keep or tmp), args.kills, args.seed, args.plan)
    print(f"runs                {', '.join(RUNS)} (deterministic, tiny)")
    print(f"kills               {report.kills}")
    print(f"resumes             {report.resumes} (+ {report.restarts} restarts of runs killed before their config)")
    print(f"identical resumes   {report.identical} of {report.resumes}; finished runs identical to uninterrupted: "
          f"{len(report.runs_identical)} of {len(RUNS)}")
    print(f"partial files       {len(report.partial)}")
    kinds = {}
    for name, steps in report.points.items():
        for point, outcome in steps:
            if point and outcome == "killed":
                kinds[point[0]] = kinds.get(point[0], 0) + 1
    print(f"kill points         {', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}")
    print(f"seconds             {time.perf_counter() - start:.0f} (--seed {args.seed}, --plan {args.plan})")
    for problem in report.partial + report.failures:
        print(f"  {problem}")
    sys.exit(1 if report.partial or report.failures else 0)


if __name__ == "__main__":
    main()

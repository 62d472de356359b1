"""Each case runs in a forked child of one parent that imported the package once: the child redirects its
output to files, moves into a fresh folder and calls ``archsearch.cli.main(argv)``; the parent waits with a
timeout, classifies what came out and checks that no file the case could touch was damaged.

The parent never runs torch compute (a fork after OpenMP has run can hang the child) and keeps one thread.
"""

from __future__ import annotations

import ctypes
import faulthandler
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .fixtures import Env, apply
from .oracle import EITHER, INVALID, VALID

#: the child's exit code when an exception got past the command line (EX_SOFTWARE)
TRACEBACK_EXIT = 70
MEMORY_LIMIT = 6 << 30  # a runaway allocation fails in the child instead of starving the machine
FILE_LIMIT = 2 << 30
ERROR_PREFIX = "archsearch: error:"
PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[|it/s\]|s/it\]|^\s*$")
TEMP_FILE = re.compile(r"^\..+\.tmp$|\.tmp$|\.partial$")
DEFECT_KINDS = ("traceback", "crash", "hang", "wrong exit code", "multi-line error", "bad error line",
                "invalid accepted", "valid rejected", "file damage")


@dataclass
class Case:
    surface: str
    argv: list[str]
    label: str  # VALID, INVALID or EITHER (oracle)
    why: str = ""  # the oracle's reason
    ops: list[tuple] = field(default_factory=list)  # files to make in the case folder first
    keep: list[str] = field(default_factory=list)  # entries that must survive unchanged (content, type, mode)
    keep_type: list[str] = field(default_factory=list)  # special files that must stay what they are
    unprivileged: bool = False  # obey file modes even as root: a read-only folder means nothing to root
    id: int = 0
    keep_mode: list[str] = field(default_factory=list)  # entries that may change content, not type or mode


@dataclass
class Result:
    case: Case
    outcome: str  # clean | accepted | refused (either) | accepted (either) | defect
    defects: list[tuple[str, str]]
    exit: int | None
    seconds: float
    cpu: float
    error_line: str
    exception: str | None = None
    where: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self, root: Path | None = None) -> dict:
        out = asdict(self)
        out["case"] = {k: v for k, v in asdict(self.case).items() if k != "ops"}
        out["case"]["files"] = [list(map(str, op[:2])) for op in self.case.ops]
        text = json.dumps(out, default=str)  # ASCII: lone surrogates (argv that was not UTF-8) survive as escapes
        return json.loads(text.replace(str(root), "$WORK") if root is not None else text)


# -- the parent ---------------------------------------------------------------------------------------
def preload() -> None:
    """Import everything a command may load, so that children start warm; no torch compute here."""
    import torch

    torch.set_num_threads(1)
    import archsearch.cli as cli

    cli.build_parser()
    import archsearch.evaluate.train  # noqa: F401
    import archsearch.report.draw  # noqa: F401
    import archsearch.report.plots  # noqa: F401
    import archsearch.search.runner  # noqa: F401
    import archsearch.studies.figures  # noqa: F401
    import scipy.stats  # noqa: F401
    import sklearn.datasets  # noqa: F401
    from archsearch.groundtruth.nb201 import NB201Table

    NB201Table.load()
    if threading.active_count() != 1:
        raise RuntimeError("the parent must hold one thread before it forks")
    try:  # orphans of a case (pool workers) come back to us and can be reaped
        ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


#: a case whose processes used no CPU for this long is waiting on something that will not come (a FIFO)
BLOCKED_AFTER = 15.0


def run_cases(cases: list[Case], env: Env, jobs: int = 2, timeout: float = 30.0, progress=None) -> list[Result]:
    """Run every case, ``jobs`` at a time; results in the order of ``cases``. On Ctrl-C (or SIGTERM turned
    into KeyboardInterrupt) the running cases are killed and the results so far returned."""
    pending, running, results = deque(cases), {}, {}
    last_poll = 0.0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                running.update(_start(pending.popleft(), env))
            finished = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if finished is None or finished.si_pid == 0:
                now = time.monotonic()
                if now - last_poll > 1.0:
                    last_poll = now
                    _watch(running, now, timeout)
                time.sleep(0.01)
                continue
            pid = finished.si_pid
            _kill_group(pid)  # leftovers of the case (pool workers) go with it
            _, status, usage = os.wait4(pid, 0)
            if pid not in running:
                continue  # an orphan of an earlier case
            job = running.pop(pid)
            job["cpu"] = usage.ru_utime + usage.ru_stime
            result = _finish(job, status, env, timeout)
            results[job["case"].id] = result
            if progress is not None:
                progress(result)
    except KeyboardInterrupt:
        for pid in list(running):
            _kill_group(pid)
            os.waitpid(pid, 0)
        print(f"interrupted: {len(results)} of {len(cases)} cases done", file=sys.stderr)
    return [results[c.id] for c in cases if c.id in results]


def _watch(running: dict, now: float, timeout: float) -> None:
    """Past the timeout, or blocked (no CPU used by the case's processes for BLOCKED_AFTER seconds), a case
    first writes its Python stacks to stderr, then is killed."""
    cpu = _group_cpu()
    for pid, job in running.items():
        used = cpu.get(pid, 0.0)
        if used > job["cpu_seen"]:
            job["cpu_seen"], job["progress_at"] = used, now
        over = now - job["start"] > timeout or now - job["progress_at"] > BLOCKED_AFTER
        if over and not job["dumped"]:
            job["dumped"] = True
            _signal(pid, signal.SIGUSR1)
        elif job["dumped"] and not job["killed"]:
            job["killed"] = True
            _kill_group(pid)


def _group_cpu() -> dict[int, float]:
    """CPU seconds used so far by the live processes of each process group."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            group = int(fields[2])
            out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def kill_strays() -> None:
    """Kill and reap processes a case left behind outside its process group (they were reparented to us)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    os.waitpid(int(entry.name), 0)
                except (ProcessLookupError, ChildProcessError):
                    pass


def _start(case: Case, env: Env) -> dict:
    case_dir = env.root / "cases" / f"{case.id:06d}"
    io_dir = env.root / "io" / f"{case.id:06d}"
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    io_dir.mkdir(parents=True, exist_ok=True)
    for op in case.ops:
        apply(op, case_dir, env)
    watched = [_resolve(p, case_dir) for p in case.keep + case.keep_type + case.keep_mode]
    before = snapshot(watched)
    before_all = set(_walk(case_dir))
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(case, case_dir, io_dir)
    return {pid: {"case": case, "dir": case_dir, "io": io_dir, "start": time.monotonic(), "killed": False, "dumped": False,
                  "cpu_seen": 0.0, "progress_at": time.monotonic(),
                  "before": before, "before_all": before_all, "watched": watched}}


def _resolve(path: str, case_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else case_dir / p


def _child(case: Case, case_dir: Path, io_dir: Path):
    code = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a huge write fails with an error, as on a full disk
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            handle = os.open(io_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)  # where a hang hangs
        record = open(io_dir / "exception.json", "w")
        os.chdir(case_dir)
        if case.unprivileged and os.geteuid() == 0:
            drop_permission_overrides()
        from archsearch.cli import main

        try:
            returned = main(list(case.argv))
            code = returned if isinstance(returned, int) else (0 if returned is None else _print_exit(returned))
        except SystemExit as exit_:  # what a real process would make of it
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else _print_exit(exit_.code))
        except BaseException as error:  # noqa: BLE001 - every escape from the CLI is the finding
            code = TRACEBACK_EXIT
            json.dump(_describe(error), record)
            record.flush()
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code & 0xFF)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_permission_overrides() -> None:
    """Root without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER: file modes apply to it as to their
    owner, so a folder of mode 0555 is read-only, while the interpreter (under /root) stays readable."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~((1 << 1) | (1 << 2) | (1 << 3)) & 0xFFFFFFFF
    data[0].effective &= keep
    data[0].permitted &= keep
    data[0].inheritable &= keep
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _print_exit(value) -> int:
    print(value, file=sys.stderr)
    return 1


def _describe(error: BaseException) -> dict:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/archsearch/" in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    return {"type": name, "message": str(error)[:300],
            "where": f"{where.filename.split('/src/')[-1]}:{where.lineno} {where.name}" if where else None,
            "deepest": f"{frames[-1].filename.split('/site-packages/')[-1]}:{frames[-1].lineno}" if frames else None}


# -- classification -----------------------------------------------------------------------------------
def _finish(job: dict, status: int, env: Env, timeout: float) -> Result:
    case, io_dir = job["case"], job["io"]
    seconds = time.monotonic() - job["start"]
    stderr = (io_dir / "stderr").read_bytes().decode("utf-8", "replace")
    lines = [line for line in stderr.splitlines() if not PROGRESS.search(line)]
    last = lines[-1].strip() if lines else ""
    record = io_dir / "exception.json"
    exception = json.loads(record.read_text()) if record.is_file() and record.stat().st_size else None
    defects, notes = [], []
    code = os.waitstatus_to_exitcode(status)
    where = exception["where"] if exception else None
    if job["killed"]:
        where = _stack_top(stderr)
        state = "blocked" if seconds < timeout else "busy"  # killed for using no CPU, or for running long
        defects.append(("hang", f"{state}: killed after {seconds:.0f} s ({job['cpu']:.1f} s CPU), in {where}"))
        code = None
    elif code < 0:
        defects.append(("crash", signal.Signals(-code).name))
    elif exception is not None or "Traceback (most recent call last)" in stderr:
        kind = exception["type"] if exception else _traceback_type(lines)
        defects.append(("traceback", f"{kind}: {exception['message'] if exception else last}"))
    elif code not in (0, 2):
        defects.append(("wrong exit code", f"exit {code}: {last}"))
    elif code == 2:
        if len(lines) > 1:
            defects.append(("multi-line error", " | ".join(lines[-3:])[:300]))
        elif not last.startswith(ERROR_PREFIX) or not last[len(ERROR_PREFIX):].strip():
            defects.append(("bad error line", last[:300] or "(nothing on stderr)"))
        if case.label == VALID:
            defects.append(("valid rejected", last))
    elif case.label == INVALID:
        defects.append(("invalid accepted", case.why))
    elif lines:
        notes.append("stderr output on success: " + lines[-1][:120])
    damage = check_damage(job)
    if damage:
        defects.append(("file damage", "; ".join(damage)))
    if code == 2 and not defects:
        left = sorted({p.relative_to(job["dir"]).parts[0] for p in _walk(job["dir"]) if p not in job["before_all"]})
        if left:
            notes.append("refused but left " + ", ".join(left[:4]))
    if defects:
        outcome = "defect"
    elif case.label == EITHER:
        outcome = "accepted (either)" if code == 0 else "refused (either)"
    else:
        outcome = "clean" if code == 2 else "accepted"
    if not defects:  # keep the case folders of defects only, for inspection
        shutil.rmtree(job["dir"], ignore_errors=True)
        shutil.rmtree(io_dir, ignore_errors=True)
    return Result(case, outcome, defects, code, round(seconds, 2), round(job["cpu"], 2), last[:300],
                  f"{exception['type']}: {exception['message']}" if exception else None, where, notes)


def _stack_top(stderr: str) -> str | None:
    """The innermost frame of the package (else any) in a faulthandler dump, most recent call first."""
    frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', stderr)
    ours = [f for f in frames if "/archsearch/" in f[0]]
    frame = (ours or frames or [None])[0]
    return f"{frame[0].split('/src/')[-1].split('/site-packages/')[-1]}:{frame[1]} {frame[2]}" if frame else None


def _traceback_type(lines: list[str]) -> str:
    for line in reversed(lines):
        match = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Iteration|Warning))\b", line)
        if match:
            return match.group(1)
    return "traceback"


# -- damage -------------------------------------------------------------------------------------------
def _walk(path: Path):
    """Every entry under ``path`` (itself included), without following links or opening special files."""
    try:
        os.lstat(path)
    except OSError:
        return
    yield path
    if path.is_dir() and not path.is_symlink():
        try:
            children = sorted(path.iterdir())
        except OSError:
            return
        for child in children:
            yield from _walk(child)


def _signature(path: Path) -> tuple:
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    sig = (kind, stat.S_IMODE(st.st_mode))
    if stat.S_ISREG(kind):
        if st.st_size <= 8 << 20:
            with open(path, "rb") as handle:
                sig += (hashlib.sha1(handle.read()).hexdigest(),)
        else:
            sig += (st.st_size, st.st_mtime_ns)
    elif stat.S_ISLNK(kind):
        sig += (os.readlink(path),)
    elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
        sig += (st.st_rdev,)
    return sig


def snapshot(paths: list[Path]) -> dict[Path, tuple]:
    out = {}
    for base in paths:
        for p in _walk(base):
            try:
                out[p] = _signature(p)
            except OSError:
                out[p] = ("unreadable",)
    return out


#: a run directory's lock file holds the pid of its last writer: a run that refuses its input may still
#: have taken the lock (docs/reliability.md, "One writer: the lock")
LOCK_FILE = ".archsearch.lock"
KIND_NAMES = {stat.S_IFREG: "regular file", stat.S_IFDIR: "folder", stat.S_IFIFO: "FIFO", stat.S_IFCHR:
              "character device", stat.S_IFLNK: "symlink", stat.S_IFSOCK: "socket", stat.S_IFBLK: "block device"}


def check_damage(job: dict) -> list[str]:
    case, case_dir = job["case"], job["dir"]
    type_only = {_resolve(p, case_dir) for p in case.keep_type}
    mode_only = {p for base in case.keep_mode for p in job["before"] if _within(p, _resolve(base, case_dir))}
    after = snapshot(job["watched"])
    problems = []
    for path, sig in job["before"].items():
        name = _short(path, case_dir)
        now = after.get(path)
        if now is None:
            problems.append(f"{name} removed")
        elif now[0] != sig[0]:
            problems.append(f"{name}: {KIND_NAMES.get(sig[0], sig[0])} replaced by {KIND_NAMES.get(now[0], now[0])}")
        elif path in type_only:
            if sig[2:] != now[2:] and not stat.S_ISREG(sig[0]):
                problems.append(f"{name}: device changed")
        elif now[1] != sig[1]:
            problems.append(f"{name}: mode {oct(sig[1])} became {oct(now[1])}")
        elif path in mode_only or path.name == LOCK_FILE:
            continue
        elif now != sig:
            problems.append(f"{name}: content changed")
    for path in after:
        if path not in job["before"] and not str(path).startswith(str(case_dir)):
            problems.append(f"{_short(path, case_dir)} written into an input folder")
    for path in _walk(case_dir):
        if path not in job["before_all"] and (TEMP_FILE.search(path.name) or path.name == "pwned"):
            problems.append(f"{_short(path, case_dir)} left behind" if path.name != "pwned" else
                            "an argument ran as code (made 'pwned')")
    return problems


def _within(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def _short(path: Path, case_dir: Path) -> str:
    try:
        return str(path.relative_to(case_dir))
    except ValueError:
        return str(path)

"""One writer per run directory.

A run holds an advisory lock (``fcntl.flock``) on ``.archsearch.lock`` in its directory for as long as
it writes there. The kernel drops the lock when the process ends, however it ends (``kill -9``
included), so a stale lock never needs cleaning by hand. The lock file itself stays: deleting it would
let a third process lock a new file while a second still holds the old one.

Whoever takes the lock is the only writer, so any temporary file of an atomic write found then belongs
to a writer that died mid-write: it is removed.

A command refused before it writes anything leaves no folder behind: the folders this process makes for
its output are recorded (``checks.MADE_DIRS``), and the command line removes those still empty (but for a
lock no one holds) when it refuses the command (``remove_unused_dirs``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from archsearch.checks import make_dir
from archsearch.errors import RunDirectoryError
from archsearch.utils.io import TEMP_PATTERN, read_yaml, writing

LOCK_NAME = ".archsearch.lock"

#: directories this process holds, with how many nested holders each has (a search holds its directory,
#: the loop inside it takes it again)
_HELD: dict[str, list[int]] = {}


def remove_unused_dirs(directories: list[Path]) -> list[Path]:
    """Remove those of ``directories`` (folders this process made: ``checks.MADE_DIRS``) that hold nothing
    but a lock file no process holds, children before parents; returns those removed. A folder that holds
    anything else, or whose lock is held, is kept, and with it its parents."""
    removed = []
    for directory in sorted(set(directories), key=lambda d: len(d.parts), reverse=True):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        if entries not in ([], [LOCK_NAME]):
            continue
        try:
            if entries:
                _remove_unheld_lock(directory / LOCK_NAME)
            directory.rmdir()
        except OSError:
            continue
        removed.append(directory)
    return removed


def _remove_unheld_lock(path: Path) -> None:
    """Unlink the lock file while holding it, so that no process holds a lock on it; OSError when another
    process holds it (or it cannot be removed)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError (an OSError): in use, keep it
        path.unlink()
    finally:
        os.close(fd)


def remove_stale_temps(directory: Path) -> list[Path]:
    removed = []
    for entry in directory.iterdir():
        if TEMP_PATTERN.match(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f" (pid {int(os.pread(fd, 32, 0).split()[0])})"
    return ""


@contextlib.contextmanager
def lock_run_dir(directory: str | os.PathLike, *, create: bool = True) -> Iterator[Path]:
    """Hold ``directory`` for writing; RunDirectoryError if another process holds it, or it cannot be
    written. ``create``: make the directory if it is missing (a new run), else require it (a resume)."""
    directory = Path(directory)
    key = os.path.realpath(directory)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield directory
        finally:
            _HELD[key][1] -= 1
        return
    if create:
        with writing(directory):
            make_dir(directory)
    elif not directory.is_dir():
        raise RunDirectoryError(f"no run directory '{directory}'")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"'{directory}' is not writable: choose a writable --out, or fix its permissions")
    with writing(directory / LOCK_NAME):
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirectoryError(f"'{directory}' is in use by another archsearch process{holder}: wait for it to "
                                "end (or stop it), then resume; two writers would interleave their files") from None
    try:
        with contextlib.suppress(OSError):  # the holder's pid is for messages only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temps(directory)
        _HELD[key] = [fd, 1]
        try:
            yield directory
        finally:
            del _HELD[key]
    finally:
        os.close(fd)  # releases the lock


_KIND_OF = {"search": ("method",), "train": ("recipe", "genotype")}
_RESUME_WITH = {"search": "archsearch search --resume", "train": "archsearch train --resume"}


def read_run_config(directory: str | os.PathLike, kind: str) -> dict:
    """The config.yaml of the run in ``directory`` that ``kind`` ('search' or 'train') resumes, as a dict;
    RunDirectoryError, one line, where the directory is missing, empty, another kind of run's, not a run,
    or its config.yaml is damaged."""
    import yaml

    directory = Path(directory)
    where = f"cannot resume '{directory}'"
    if not directory.exists():
        raise RunDirectoryError(f"{where}: no such directory")
    if not directory.is_dir():
        raise RunDirectoryError(f"{where}: not a directory")
    path = directory / "config.yaml"
    if not path.is_file():
        empty = not any(p.name != LOCK_NAME for p in directory.iterdir())
        raise RunDirectoryError(f"{where}: {'it is empty' if empty else 'it holds no run (no config.yaml)'}; "
                                "start a new run with --out")
    try:
        data = read_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise RunDirectoryError(f"{where}: its config.yaml is damaged ({reason})") from None
    if not isinstance(data, dict) or not data:
        raise RunDirectoryError(f"{where}: its config.yaml is damaged (not a mapping of settings)")
    found = next((k for k, keys in _KIND_OF.items() if all(key in data for key in keys)), None)
    if found is None:
        raise RunDirectoryError(f"{where}: its config.yaml is not an archsearch run's")
    if found != kind:
        raise RunDirectoryError(f"{where} with '{_RESUME_WITH[kind].rsplit(' ', 1)[0]}': it is a {found} run "
                                f"({_RESUME_WITH[found]} {directory})")
    return data

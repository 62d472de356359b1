"""Checks of the values a user hands in, shared by the library and the command line.

Each check returns the value in its plain Python type or raises one of the package's errors saying what
was expected, so that a bad value fails where it enters, under its own name, and not deep inside numpy,
torch or the operating system: integers, numbers, seeds, name lists, memory, paths to read and folders
or files to write. Settings read by their annotations (``coerce``, ``Rule``, ``build``) are in
``settings.py``.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from archsearch.errors import ConfigError, DataError, RunDirectoryError, shown

#: seeds reach numpy, torch and CMA-ES; the narrowest of them (numpy's legacy seeding) takes 32 bits
SEED_MAX = 2**32 - 1
#: repeats (seeds, runs) of one study: the study lists its jobs up front, and more would fill memory first
MAX_REPEATS = 100_000
def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"in {minimum}..{maximum}"
    return f">= {minimum}" if minimum is not None else f"<= {maximum}"


def integer(value, what: str, *, minimum: int | None = None, maximum: int | None = None,
            error: type[Exception] = ConfigError) -> int:
    """``value`` as an int; bools and floats (even 3.0) are refused, as is anything out of bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{what} must be an integer, got {shown(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(f"{what} must be an integer {_bounds(minimum, maximum)}, got {shown(value)}")
    return value


def optional_integer(value, what: str, **bounds) -> int | None:
    return None if value is None else integer(value, what, **bounds)


def number(value, what: str, *, minimum: float | None = None, positive: bool = False,
           error: type[Exception] = ConfigError) -> float:
    """``value`` as a finite float (NaN and infinity are refused), > 0 with ``positive``, >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise error(f"{what} must be a finite number, got {shown(value)}")
    value = float(value)
    if positive and not value > 0:
        raise error(f"{what} must be > 0, got {value:g}")
    if minimum is not None and value < minimum:
        raise error(f"{what} must be >= {minimum:g}, got {value:g}")
    return value


def seed(value, what: str = "seed") -> int:
    return integer(value, what, minimum=0, maximum=SEED_MAX)


def names(value, what: str, registry=None) -> list[str]:
    """A non-empty list of distinct names, from a comma-separated string or an iterable of strings;
    each one known to ``registry`` (an ``archsearch.registry.Registry``) where given."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ConfigError(f"{what} must be a comma-separated list of names, got {shown(value)}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{what}: names are strings, got {shown(item)}")
        item = item.strip()
        if not item:
            continue
        if item in out:
            raise ConfigError(f"{what} names '{item}' twice; give each once")
        if registry is not None:
            registry.get(item)
        out.append(item)
    if not out:
        known = f" (known: {', '.join(registry.names())})" if registry is not None else ""
        raise ConfigError(f"{what} needs at least one name{known}")
    return out


def fits_in_memory(nbytes: int, what: str, device=None) -> None:
    """Refuse a request for more bytes than the machine (or the CUDA ``device``) has free, before the
    allocation (which the kernel may grant, and then answer by swapping for minutes or by killing the
    process)."""
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = _available_memory()
    if free is not None and nbytes > free:
        raise ConfigError(f"{what} needs {nbytes / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB "
                          "this machine has free; ask for less")


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as handle:  # Linux: what can be had without swapping
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): the allocator decides
        return None


def _as_path(path, what: str, error: type[Exception]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{what} must be a path, got {shown(path)}")
    try:
        text = os.fspath(path)
        if not isinstance(text, str) or not text.strip():  # Path('') would be the current folder
            raise error(f"{what} is empty or not text; give a path")
        return Path(text).expanduser()
    except (TypeError, RuntimeError) as err:  # a broken __fspath__, '~nouser'
        raise error(f"{what} {shown(path)} is not a usable path ({err})") from None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a directory" if stat.S_ISDIR(mode) else "a file"


def readable_path(path, what: str, *, folder: bool = True, error: type[Exception] = DataError) -> Path:
    """``path`` where it is a regular file (or, with ``folder``, a directory), checked before anything opens
    it: opening a FIFO blocks until a writer comes, and a device may never end."""
    path = _as_path(path, what, error)
    try:
        mode = path.stat().st_mode  # follows links: a link to a file is that file
    except FileNotFoundError:
        raise error(f"{what} {shown(str(path))} does not exist") from None
    except (OSError, ValueError) as err:
        raise error(f"{what} {shown(str(path))} cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if stat.S_ISREG(mode) or (folder and stat.S_ISDIR(mode)):
        return path
    expected = "a file or a folder" if folder else "a file"
    raise error(f"{what} {shown(str(path))} is {_kind(mode)}, not {expected}")


class MadeDirs:
    """While recording (a command of the command line runs): every folder ``make_dir`` makes, the missing
    parents of an output folder included, so that a command refused before it writes anything can remove
    them again (utils/rundir.py, ``remove_unused_dirs``)."""

    def __init__(self):
        self.recording, self.paths = False, []

    def start(self) -> None:
        self.recording, self.paths = True, []

    def stop(self) -> list[Path]:
        """Stop recording; the folders recorded."""
        paths, self.recording, self.paths = self.paths, False, []
        return paths


MADE_DIRS = MadeDirs()


def make_dir(directory: Path) -> None:
    """``mkdir -p directory``; each folder it makes is recorded in MADE_DIRS while that records (before it
    is made: a parent made by a call that then fails is recorded too)."""
    if MADE_DIRS.recording:
        path = Path(os.path.abspath(directory))
        while not os.path.lexists(path) and path != path.parent:
            MADE_DIRS.paths.append(path)
            path = path.parent
    directory.mkdir(parents=True, exist_ok=True)


def output_dir(path, what: str = "output directory") -> Path:
    """``path`` as a directory that exists (created here) and can be written, checked before any work, so
    that a long run does not end by failing to save its results."""
    path = _as_path(path, what, RunDirectoryError)
    try:
        make_dir(path)
    except FileExistsError:
        raise RunDirectoryError(f"{what} {shown(str(path))} is a file, not a directory; choose another path") from None
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or err
        raise RunDirectoryError(f"cannot create {what} {shown(str(path))} ({reason}); choose a writable path") from None
    if not path.is_dir():
        raise RunDirectoryError(f"{what} {shown(str(path))} is not a directory; choose another path")
    try:  # a file made and dropped: permissions alone do not tell (root, read-only mounts, /proc)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise RunDirectoryError(f"{what} {shown(str(path))} is not writable ({err.strerror or err}); "
                                "choose a writable path") from None
    return path


def output_file(path, what: str = "output file") -> Path:
    """``path`` as a file that can be written: its folder exists (created here) and it is no directory."""
    path = _as_path(path, what, RunDirectoryError)
    output_dir(path.parent, f"the folder of {what}")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    except OSError as err:  # a name too long for the file system, say
        raise RunDirectoryError(f"{what} {shown(str(path))} cannot be used ({err.strerror or err}); "
                                "choose another path") from None
    if not stat.S_ISREG(mode):
        raise RunDirectoryError(f"{what} {shown(str(path))} is {_kind(mode)}, not a regular file; "
                                "refusing to replace it: choose another path")
    return path

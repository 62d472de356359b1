"""Checks of the values a user hands in, shared by the library and the command line.

Each check returns the value in its plain Python type or raises one of the package's errors saying what
was expected, so that a bad value fails where it enters, under its own name, and not deep inside numpy,
torch or the operating system. Two kinds: direct checks (``integer``, ``number``, ``seed``, paths to read
and folders to write), and checks driven by annotations (``coerce`` a value to a field's type; a
``Rule`` for its range; ``check_options`` / ``build`` for the options of a part built by name, such as a
relaxation, an optimizer, a selector or a supernet).
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import stat
import tempfile
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# did_you_mean lives with the errors, whose messages use it too; the checks hand it on to their callers
from archsearch.errors import ArchSearchError, ConfigError, DataError, RunDirectoryError, did_you_mean, shown

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


def output_dir(path, what: str = "output directory") -> Path:
    """``path`` as a directory that exists (created here) and can be written, checked before any work, so
    that a long run does not end by failing to save its results."""
    path = _as_path(path, what, RunDirectoryError)
    try:
        path.mkdir(parents=True, exist_ok=True)
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


# ---- values checked by their annotations -------------------------------------------------------------
FLOAT32_MAX = 3.4028234663852886e38


# ---- types ------------------------------------------------------------------------------------------
def _describe(hint) -> str:
    return str(hint).replace("typing.", "").replace("collections.abc.", "").replace("<class '", "").replace("'>", "")


def _is_optional(hint) -> tuple[bool, Any]:
    """(None allowed, the hint without None)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]
    return False, hint


def _scalar(hint, value):
    """Coerce one value to a scalar type; raises TypeError/ValueError when it is not one."""
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if hint in (int, float) and isinstance(value, str):  # YAML reads 1e-3 as text; Python reads it as a number
        try:
            value = int(value)
        except ValueError:
            value = float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value != int(value) or not -2**63 <= int(value) < 2**63:  # beyond any tensor size or seed
            raise TypeError
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        value = float(value)
        # every setting ends up in float32 tensor arithmetic, which overflows past this
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ValueError("not a finite float32")
        return value
    if hint is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    raise TypeError


def read_value(name: str, text: str):
    """A value typed on the command line, read as YAML (``3`` a number, ``[1, 2]`` a list, ``abc`` text)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"cannot read value {shown(text)} for '{name}'") from None
    except RecursionError:
        raise ConfigError(f"the value for '{name}' is nested too deeply to read") from None


YAML_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def coerce(name: str, hint, value):
    """``value`` as the annotation ``hint`` says (YAML text is parsed first), or a ConfigError.

    Takes bool, int, float, str, ``X | None``, dict, ``tuple[float, ...]``, ``Sequence[X]``/``list[X]``
    and ``Any``; floats must be finite (NaN and inf are never a setting).
    """
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    optional, hint = _is_optional(hint)
    if optional and isinstance(value, str) and value.strip() in YAML_NULLS:
        return None  # `early_stop=null` on a command line: no rule, as in a YAML file
    if isinstance(value, str) and hint is not str:
        value = read_value(name, value)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"'{name}' cannot be empty (expected {_describe(hint)})")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint in (bool, int, float, str):
            return _scalar(hint, value)
        if hint is dict or origin in (dict, Mapping):
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        if origin is tuple:
            if not isinstance(value, (list, tuple)):
                raise TypeError
            items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
            if len(items) != len(value):
                raise TypeError
            return tuple(_scalar(h, v) for h, v in zip(items, value))
        if origin in (list, Sequence, typing.Sequence) or hint in (list, tuple):
            if not isinstance(value, (list, tuple)):
                raise TypeError
            item = args[0] if args else Any
            return [v if item is Any else _scalar(item, v) for v in value]
        if origin in (typing.Union, types.UnionType):  # int | float, str | list: the first that fits
            for option in args:
                try:
                    return coerce(name, option, value)
                except ConfigError:
                    continue
            raise TypeError
        if origin in (Callable, typing.Callable):
            if not callable(value):
                raise TypeError
            return value
        if isinstance(hint, type):  # any other class (a torch.Generator, say): an instance of it
            if not isinstance(value, hint):
                raise TypeError
            return value
    except (TypeError, ValueError, OverflowError):
        expected = _describe(hint) + (" or empty" if optional else "")
        raise ConfigError(f"bad value {shown(value)} for '{name}' (expected {expected})") from None
    return value


def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- ranges -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A condition on one value and the words for it ("an integer >= 1")."""

    holds: Callable[[Any], bool]
    text: str

    def check(self, name: str, value) -> None:
        if value is not None and not self.holds(value):
            raise ConfigError(f"'{name}' must be {self.text}, got {shown(value)}")


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f">= {low}")


def in_range(low: float, high: float) -> Rule:
    """low <= v < high."""
    return Rule(lambda v: low <= v < high, f"in [{low}, {high})")


def one_of(*choices) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


POSITIVE = Rule(lambda v: v > 0, "> 0")
NON_NEGATIVE = at_least(0)
PROBABILITY = in_range(0.0, 1.0)
#: numpy's legacy seeding, which the runs use, takes 0 <= seed < 2**32
SEED = Rule(lambda v: 0 <= v < 2**32, "in [0, 2**32)")


# ---- a component's options --------------------------------------------------------------------------
def keyword_options(factory: Callable, fixed: Iterable[str] = ()) -> dict[str, inspect.Parameter]:
    """The parameters of ``factory`` a user may set by name (those the caller fixes left out)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters
    skip = {"self", *fixed}
    return {name: p for name, p in params.items()
            if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_options(what: str, factory: Callable, options: Mapping | None, fixed: Iterable[str] = ()) -> dict:
    """``options`` checked against ``factory``'s keyword parameters: unknown names are an error that
    lists the valid ones; values are coerced to the parameters' annotations."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"the options of {what} must be a mapping of name: value, got {shown(options)}")
    accepted = keyword_options(factory, fixed)
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that names something unimportable: check names only
        hints = {}
    out = {}
    for key, value in options.items():
        if key not in accepted:
            known = sorted(accepted)
            listing = ", ".join(known) if known else "none"
            raise ConfigError(f"{what} has no option '{key}'{did_you_mean(key, known)} (options: {listing})")
        out[key] = coerce(f"{what}: {key}", hints.get(key, Any), value)
    return out


def build(what: str, factory: Callable, options: Mapping | None = None, **fixed):
    """``factory(**fixed, **options)`` with the options checked; a ValueError the factory raises about
    them (torch.optim's own checks, say) becomes a ConfigError naming the component."""
    checked = check_options(what, factory, options, fixed)
    try:
        return factory(**fixed, **checked)
    except ArchSearchError:
        raise
    except ValueError as err:
        raise ConfigError(f"{what}: {err}") from None

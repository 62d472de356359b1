"""The package's own exception types: every error a user can cause is one of these."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: characters of a bad value an error message quotes
SHOWN = 80


def shown(value, limit: int = SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message quotes bad input on one line (repr escapes
    newlines) and never echoes megabytes of it."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "..."
    if isinstance(value, int) and value.bit_length() > 4 * limit:  # repr of a huge int is slow, then refused
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not replace the error being reported
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def closest(text: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name most like ``text`` (difflib's similarity at least ``cutoff``), or None."""
    close = difflib.get_close_matches(text, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: object, known: Iterable[str], cutoff: float = 0.6, n: int = 1) -> str:
    """"; did you mean 'x'?" naming the closest known name (up to ``n`` of them, closest first:
    "; did you mean 'x', 'y'?"), or "": the tail of an unknown-name message."""
    matches = difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)
    return "; did you mean " + ", ".join(f"'{m}'" for m in matches) + "?" if matches else ""


class ArchSearchError(Exception):
    """Base class of every error the package raises on bad input."""


class InvalidGenotypeError(ArchSearchError, ValueError):
    """A genotype or architecture string that does not describe a member of the space."""


class UnknownNameError(ArchSearchError, KeyError):
    """A name (space, op, method, dataset, key) that no registry knows."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        probe = name[:SHOWN] if isinstance(name, str) else shown(name)  # str() of a huge int is refused
        super().__init__(f"unknown {kind} {shown(name)}{did_you_mean(probe, known)} (known: {', '.join(known)})")
        self.kind, self.name, self.known, self.suggestion = kind, name, known, closest(probe, known)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]

    def __reduce__(self):  # rebuilt from its parts, so that it crosses a process pool intact
        return type(self), (self.kind, self.name, self.known)


class ConfigError(ArchSearchError, ValueError):
    """An invalid configuration value or override."""


class DataError(ArchSearchError, OSError):
    """A missing or malformed dataset."""


class ShapeError(ArchSearchError, ValueError):
    """Input of a shape the network or dataset cannot take."""


class NonFiniteLossError(ArchSearchError, FloatingPointError):
    """A loss became NaN or infinite; the last checkpoint is kept."""


class CheckpointError(ArchSearchError, ValueError):
    """A checkpoint that is corrupt, truncated, or belongs to another run or configuration."""


class RunDirectoryError(ArchSearchError, OSError):
    """A run directory that cannot be used: missing, locked by another process, not writable, or full."""


class DeviceError(ArchSearchError, ValueError):
    """A device this build of PyTorch or this machine does not have (``cuda`` without CUDA, say)."""

"""The package's own exception types: every error a user can cause is one of these."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ArchSearchError(Exception):
    """Base class of every error the package raises on bad input."""


class InvalidGenotypeError(ArchSearchError, ValueError):
    """A genotype or architecture string that does not describe a member of the space."""


class UnknownNameError(ArchSearchError, KeyError):
    """A name (space, op, method, dataset, key) that no registry knows."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        super().__init__(f"unknown {kind} '{name}'{hint} (known: {', '.join(known)})")
        self.kind, self.name, self.known, self.suggestion = kind, name, known, close[0] if close else None

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


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

"""Checkpoints of a run: checksummed, the last two kept, damage reported in one line.

A checkpoint file is a 56-byte header followed by what ``torch.save`` writes for the state dict::

    magic    16 bytes  b"archsearch-ckpt" + a format version byte (1)
    length    8 bytes  little-endian size of the payload
    sha256   32 bytes  of the payload
    payload            torch.save(state)

so a truncated or corrupted file is told apart from a good one before unpickling anything. A run keeps
``checkpoint.pt`` (the newest) and ``checkpoint.prev.pt`` (the one before): saving renames the newest to
``.prev`` and writes the new one atomically. Loading takes the newest good one; a damaged newest is
reported as a warning and the previous one is used (the run then redoes the epochs after it).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
from pathlib import Path

from archsearch.errors import CheckpointError
from archsearch.utils.io import read_regular_bytes, write_bytes_atomic

MAGIC = b"archsearch-ckpt\x01"
_LENGTH = struct.Struct("<Q")
HEADER_SIZE = len(MAGIC) + _LENGTH.size + 32

log = logging.getLogger("archsearch")


def encode(state: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return MAGIC + _LENGTH.pack(len(payload)) + hashlib.sha256(payload).digest() + payload


def decode(data: bytes, where: str | os.PathLike, map_location=None) -> dict:
    """The state in ``data`` (the bytes of checkpoint file ``where``); CheckpointError if it is damaged."""
    import torch

    if not data.startswith(MAGIC[:-1]):
        raise CheckpointError(f"'{where}' is not an archsearch checkpoint")
    if data[len(MAGIC) - 1] != MAGIC[-1]:
        raise CheckpointError(f"'{where}' has checkpoint format {data[len(MAGIC) - 1]}, this archsearch reads "
                              f"format {MAGIC[-1]}")
    if len(data) < HEADER_SIZE:
        raise CheckpointError(f"checkpoint '{where}' is truncated ({len(data)} bytes, less than its header)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    digest, payload = data[len(MAGIC) + _LENGTH.size:HEADER_SIZE], data[HEADER_SIZE:]
    if len(payload) != length:
        state = "truncated" if len(payload) < length else "longer than written"
        raise CheckpointError(f"checkpoint '{where}' is {state} ({len(payload)} of {length} bytes)")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"checkpoint '{where}' is corrupt (checksum mismatch)")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001  (unpickling can raise anything a class's __setstate__ does)
        raise CheckpointError(f"checkpoint '{where}' cannot be unpickled: {one_line(err)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{where}' holds a {type(state).__name__}, not a state dict")
    return state


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (torch's load_state_dict errors span several)."""
    text = "; ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


class CheckpointStore:
    """``checkpoint.pt`` and ``checkpoint.prev.pt`` of a run directory."""

    def __init__(self, directory: str | os.PathLike, name: str = "checkpoint.pt"):
        self.path = Path(directory) / name
        self.previous = self.path.with_name(f"{self.path.stem}.prev{self.path.suffix}")
        self._newest_damaged = False  # then the next save replaces it, keeping the good previous one


    def exists(self) -> bool:
        return self.path.exists() or self.previous.exists()

    def save(self, state: dict) -> None:
        write_bytes_atomic(self.path, encode(state), keep_previous=None if self._newest_damaged else self.previous)
        self._newest_damaged = False

    def load(self, map_location=None) -> tuple[dict | None, Path | None]:
        """(state, path) of the newest good checkpoint; (None, None) where there is none at all.
        CheckpointError where every checkpoint there is damaged."""
        problems = []
        for path in (self.path, self.previous):
            try:
                data = read_regular_bytes(path)
            except FileNotFoundError:
                continue  # a run killed between the two renames of a save has only the previous one
            try:
                state = decode(data, path, map_location)
            except CheckpointError as err:
                problems.append(str(err))
                continue
            self._newest_damaged = bool(problems)
            for problem in problems:
                log.warning("archsearch: warning: %s; resuming from '%s' (epoch %s) instead", problem, path,
                            state.get("epoch", "?"))
            return state, path
        if problems:
            raise CheckpointError(f"{'; '.join(problems)}: no good checkpoint is left, start the run again")
        return None, None


def require_checkpoint_for(metrics: Path) -> None:
    """A run without a checkpoint died before its first one, and then it has no metrics either: metrics
    without any checkpoint mean the checkpoints were removed, and a restart would silently drop them."""
    from archsearch.utils.io import read_jsonl

    epochs = len(read_jsonl(metrics))
    if epochs:
        raise CheckpointError(f"no checkpoint in '{metrics.parent}' although its {metrics.name} records {epochs} "
                              "epoch(s): the checkpoints were removed; start a new run")

"""Writes of results: atomic, honouring the umask, and failing with one clear error.

Every byte a run writes goes through ``_write_all`` (and every rename through ``_replace``), so a
reader never sees half a file under its final name: a file is written to a temporary sibling
(``.<name>.<pid>.<random>.tmp``), synced, then renamed over the target. A killed writer can leave such
a temporary behind; the next writer of the directory removes it (``utils/rundir.py``). ``metrics.jsonl``
is the exception: it is appended to, one whole line per ``write()``, and a resumed run rewrites it
from its checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import yaml

from archsearch.errors import ArchSearchError, RunDirectoryError

#: the temporary files of atomic writes: ``.<target name>.<pid>.<8 hex digits>.tmp``
TEMP_PATTERN = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")

_HINTS = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space", errno.EACCES: "make it writable",
          errno.EPERM: "make it writable", errno.EROFS: "make it writable"}
_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"))


def _write_all(fd: int, data: bytes, path: Path) -> None:
    """Write ``data`` to ``fd`` (a file destined for ``path``). Fault-injection tests wrap this function."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _replace(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target``. Fault-injection tests wrap this function."""
    os.replace(source, target)


@contextlib.contextmanager
def writing(path: str | os.PathLike):
    """Turn an OS error while writing ``path`` (disk full, read-only, permission) into one line."""
    try:
        yield
    except ArchSearchError:
        raise
    except OSError as err:
        reason = err.strerror or os.strerror(err.errno or errno.EIO)
        hint = _HINTS.get(err.errno)
        raise RunDirectoryError(f"cannot write '{path}': {reason}; what was written before is intact"
                                + (f" ({hint}, then resume)" if hint else "")) from None


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; some file systems cannot sync a directory, which only costs durability."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _kind(mode: int) -> str | None:
    return next((name for test, name in _KINDS if test(mode)), None)


def _target(path: Path) -> Path:
    """The path to replace. A symlink is followed (its target is what the user named; replacing the
    link itself would cut it). Anything but a regular file is refused: renaming over a device, FIFO or
    directory would destroy it (``--out /dev/null`` as root once replaced the device with a file), and a
    device or pipe has no previous content for an atomic write to protect, so there is no honest way to
    write to it atomically."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError:
        return path  # unreadable metadata: the write itself reports the error
    kind = _kind(mode)
    if kind is not None:
        raise RunDirectoryError(f"refusing to replace '{path}', a {kind}, with a file: give the path of a "
                                "regular file")
    return path


def _temp_path(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, keep_previous: str | os.PathLike | None = None
                       ) -> None:
    """Write ``data`` to ``path`` atomically. With ``keep_previous``, the file ``path`` held before is
    renamed to it first (a crash between the two renames leaves only ``keep_previous``, never a torn file)."""
    path = _target(Path(path))
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(path)
        # os.open with 0o666 lets the umask decide the mode, as for any file a program creates
        # (tempfile.mkstemp would make every result 0600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            try:
                _write_all(fd, data, path)
                os.fsync(fd)
            finally:
                os.close(fd)
            if keep_previous is not None and path.exists():
                _replace(path, Path(keep_previous))
            _replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_directory(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(obj, sort_keys=False))


def read_yaml(path: str | os.PathLike) -> Any:
    """What a YAML file holds (safe types only). OSError, UnicodeDecodeError, yaml.YAMLError and
    RecursionError pass through: each reader words them for what the file is to it."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def save_torch_atomic(path: str | os.PathLike, obj: Any) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def jsonl_text(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one line with one write(), synced. A failed append (disk full) is cut off again, so the
    file keeps whole lines only; a kill in the middle can leave a torn last line, which readers skip."""
    path = Path(path)
    line = jsonl_text([record]).encode()
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, line, path)
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def read_regular_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file. Anything else a run directory may hold in its place (a FIFO, a device,
    a directory) is a RunDirectoryError, found without blocking: opening a FIFO for reading waits for a
    writer unless O_NONBLOCK is given, and reading a device may never end."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise RunDirectoryError(f"cannot read '{path}': {err.strerror or err}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise RunDirectoryError(f"'{path}' is a {kind}, not a regular file: remove it or choose another run")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    except OSError as err:
        raise RunDirectoryError(f"cannot read '{path}': {err.strerror or err}") from None
    finally:
        os.close(fd)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read complete lines; a torn last line (killed mid-write) is ignored, as is anything after it."""
    records = []
    try:
        data = read_regular_bytes(path)
    except FileNotFoundError:
        return records
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            break
        if not isinstance(record, dict):
            break
        records.append(record)
    return records


def rewrite_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    """Make ``path`` hold exactly ``records`` (a resumed run's metrics are those of its checkpoint)."""
    path = Path(path)
    data = jsonl_text(records).encode()
    if not records and not path.exists():
        return
    if not path.exists() or path.read_bytes() != data:
        write_bytes_atomic(path, data)

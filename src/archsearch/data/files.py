"""Uniform read access to a dataset source: a folder, or a (gzipped) tar archive of one.

Names are POSIX paths relative to the folder (or archive root). A tar archive is read in one streaming
pass, because seeking backwards in a gzip stream restarts decompression from the start.
"""

from __future__ import annotations

import lzma
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from archsearch.checks import readable_path
from archsearch.errors import DataError

#: what a damaged archive raises, from the tar reader and the decompressors under it (TypeError: the stream
#: reader of CPython 3.11 on a file cut inside the gzip header)
ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, TypeError, zlib.error, lzma.LZMAError)


def regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative POSIX name, stat) of the regular files under ``root``, in sorted order.

    FIFOs, sockets, devices and broken links are left out: none holds a dataset file, and opening a FIFO
    would block. A folder that cannot be listed is an error, not a silent gap in the dataset.
    """

    def unlistable(error: OSError):
        raise DataError(f"cannot list {error.filename} ({error.strerror}); check its permissions")

    for folder, dirs, files in os.walk(root, onerror=unlistable):
        dirs.sort()
        rel = Path(folder).relative_to(root)
        for name in sorted(files):
            try:
                info = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                yield (rel / name).as_posix(), info


class SourceFiles:
    """The regular files under a source, by relative name."""

    def __init__(self, path: Path, names: list[str]):
        self.path = path
        self.names = names

    def read(self, name: str) -> bytes:
        raise NotImplementedError


class FolderFiles(SourceFiles):
    def __init__(self, path: Path):
        super().__init__(path, [name for name, _ in regular_files(path)])

    def read(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except OSError as error:
            raise DataError(f"cannot read {self.path / name} ({error.strerror or error}); check the file") from None


class TarFiles(SourceFiles):
    def __init__(self, path: Path, expected: str):
        self._data: dict[str, bytes] = {}
        try:
            with tarfile.open(path, mode="r|*") as archive:
                for member in archive:
                    if member.isfile():
                        name = member.name[2:] if member.name.startswith("./") else member.name
                        self._data[name] = archive.extractfile(member).read()
        except ARCHIVE_ERRORS as error:
            raise DataError(f"{path} is not a readable folder or tar archive ({error}); {expected}") from None
        super().__init__(path, sorted(self._data))

    def read(self, name: str) -> bytes:
        return self._data[name]


def source_path(path, dataset: str, expected: str) -> Path:
    """``data_dir`` checked to be a folder or a regular file (see ``checks.readable_path``)."""
    if path is None:
        raise DataError(f"dataset '{dataset}' needs data_dir: {expected}")
    try:
        return readable_path(path, "data_dir")
    except DataError as error:
        raise DataError(f"{error}; {expected}") from None


def open_source(path, dataset: str, expected: str) -> SourceFiles:
    """The files at ``path``: a folder as it is, a file as a tar archive."""
    path = source_path(path, dataset, expected)
    if path.is_dir():
        return FolderFiles(path)
    return TarFiles(path, expected)

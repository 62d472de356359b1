"""A disk cache of decoded datasets, keyed by what they were decoded from.

A cache entry is a torch file of the four tensors, the class names and the channel statistics, named
after a hash of the source's resolved path, its size and modification time (for a folder: file count, total
size, newest mtime) and the options that shaped the decode, so that changing the source invalidates it.
Entries are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch

from archsearch.data.dataset import ImageDataset
from archsearch.data.files import regular_files
from archsearch.errors import ConfigError, shown
from archsearch.utils.io import save_torch_atomic

#: bump when the decoded layout changes, so old entries are ignored
CACHE_VERSION = 2


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else $ARCHSEARCH_CACHE, else ~/.cache/archsearch."""
    if cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise ConfigError(f"cache_dir must be a path, got {shown(cache_dir)}")
        return Path(cache_dir).expanduser()
    env = os.environ.get("ARCHSEARCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archsearch"


def fingerprint(path: Path) -> dict:
    """Identity of a file (size, mtime) or a folder (file count, total size, newest mtime)."""
    path = path.resolve()
    if path.is_file():
        stat = path.stat()
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    count = size = newest = 0
    for _, stat in regular_files(path):  # the files FolderFiles reads, no others
        count, size, newest = count + 1, size + stat.st_size, max(newest, stat.st_mtime_ns)
    return {"path": str(path), "files": count, "size": size, "mtime_ns": newest}


def cache_file(name: str, source: Path, options: dict, cache_dir=None) -> Path:
    key = json.dumps({"v": CACHE_VERSION, "source": fingerprint(source), **options}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_root(cache_dir) / f"{name}-{digest}.pt"


def load_cached(path: Path, name: str) -> ImageDataset | None:
    """The dataset stored at ``path``, or None where there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        stats = tuple(tuple(float(v) for v in blob[k]) for k in ("mean", "std"))
        dataset = ImageDataset(
            name, blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], list(blob["classes"]), stats
        )
        _check_entry(dataset)
        return dataset
    except Exception as error:  # a damaged or foreign entry is rebuilt, not fatal
        warnings.warn(f"ignoring unreadable dataset cache {path} (it is rebuilt): {error}", stacklevel=3)
        return None


def _check_entry(dataset: ImageDataset) -> None:
    """What ImageDataset does not check itself but a foreign file may get wrong."""
    if not all(isinstance(c, str) for c in dataset.classes):
        raise ValueError("class names are not strings")
    labels = torch.cat([dataset.train_y, dataset.test_y])
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(dataset.classes)):
        raise ValueError(f"labels outside 0..{len(dataset.classes) - 1}")
    if any(len(s) != dataset.in_channels for s in dataset.stats):
        raise ValueError(f"channel statistics do not match the {dataset.in_channels} channels")


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    """torch.save writes a view's whole storage: copy views of larger tensors first."""
    t = t.contiguous()
    return t if t.untyped_storage().nbytes() == t.nbytes else t.clone()


def store(path: Path, dataset: ImageDataset) -> None:
    """Write the entry atomically; a cache folder that cannot be written only costs a warning."""
    blob = {
        "train_x": _own_storage(dataset.train_x),
        "train_y": _own_storage(dataset.train_y),
        "test_x": _own_storage(dataset.test_x),
        "test_y": _own_storage(dataset.test_y),
        "classes": list(dataset.classes),
        "mean": list(dataset.mean),
        "std": list(dataset.std),
    }
    try:
        save_torch_atomic(path, blob)
    except OSError as error:
        warnings.warn(f"could not write dataset cache {path}: {error}", stacklevel=3)


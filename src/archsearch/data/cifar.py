"""CIFAR-10 / CIFAR-100 in the official "python version" layout (Krizhevsky, 2009).

``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``, ``batches.meta``;
``cifar-100-python/``: ``train``, ``test``, ``meta``. Each batch is a pickled dict with ``b'data'``, an
(N, 3072) uint8 array (1024 red, then green, then blue values, rows top to bottom), and the labels
(``b'labels'``, or ``b'fine_labels'`` for CIFAR-100). Pickles are trusted as the official format.
"""

from __future__ import annotations

import pickle
import posixpath
from dataclasses import dataclass

import numpy as np
import torch

from archsearch.data.dataset import ImageDataset
from archsearch.data.files import SourceFiles
from archsearch.errors import DataError


@dataclass(frozen=True)
class CifarLayout:
    folder: str  # the official folder name
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: bytes
    names_key: bytes


CIFAR10 = CifarLayout(
    "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test_batch",
    "batches.meta",
    b"labels",
    b"label_names",
)
CIFAR100 = CifarLayout("cifar-100-python", ("train",), "test", "meta", b"fine_labels", b"fine_label_names")


def find_layout(files: SourceFiles, layout: CifarLayout) -> str | None:
    """The folder prefix holding ``layout``'s files, or None where its marker file is absent.

    Raises DataError when the marker is there but other files of the layout are missing.
    """
    marker = layout.train[0]
    for name in files.names:
        if posixpath.basename(name) == marker:
            prefix = posixpath.dirname(name)
            siblings = {posixpath.basename(n) for n in files.names if posixpath.dirname(n) == prefix}
            if layout is CIFAR100 and not {layout.test, layout.meta} <= siblings:
                continue  # a file named 'train' alone is no CIFAR-100 folder
            missing = [f for f in (*layout.train, layout.test, layout.meta) if f not in siblings]
            if missing:
                raise DataError(
                    f"{files.path}: the {layout.folder} folder '{prefix or '.'}' lacks {', '.join(missing)}; "
                    f"expected {', '.join((*layout.train, layout.test, layout.meta))}"
                )
            return prefix
    return None


def _unpickle(files: SourceFiles, name: str) -> dict:
    try:
        blob = pickle.loads(files.read(name), encoding="bytes")
    except Exception as error:
        raise DataError(f"{files.path}: cannot unpickle {name} ({error}); is it a CIFAR python batch?") from error
    if not isinstance(blob, dict):
        raise DataError(f"{files.path}: {name} holds a {type(blob).__name__}, expected a dict")
    return blob


def _batch(files: SourceFiles, name: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    blob = _unpickle(files, name)
    if b"data" not in blob or label_key not in blob:
        raise DataError(f"{files.path}: {name} lacks the keys b'data' and {label_key!r}")
    try:
        data, labels = np.asarray(blob[b"data"]), np.asarray(blob[label_key])
    except (TypeError, ValueError, OverflowError) as error:  # ragged lists, say
        raise DataError(f"{files.path}: {name} holds data or labels that are not arrays of integers ({error})") from None
    # checked before the cast, which would wrap 300 to 44 without a word
    if data.dtype.kind not in "iu" or labels.dtype.kind not in "iu" or (data.size and not 0 <= data.min() <= data.max() <= 255):
        raise DataError(f"{files.path}: {name} holds data or labels that are not arrays of integers "
                        f"(pixels 0..255; got {data.dtype} data, {labels.dtype} labels)")
    data, labels = data.astype(np.uint8), labels.astype(np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.ndim != 1 or data.shape[0] != labels.shape[0]:
        raise DataError(
            f"{files.path}: {name} has data {data.shape} and {labels.shape[0]} labels; expected (N, 3072) and N"
        )
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(files: SourceFiles, prefix: str, layout: CifarLayout, name: str) -> ImageDataset:
    def path(f: str) -> str:
        return posixpath.join(prefix, f) if prefix else f

    train = [_batch(files, path(f), layout.label_key) for f in layout.train]
    test_x, test_y = _batch(files, path(layout.test), layout.label_key)
    meta = _unpickle(files, path(layout.meta))
    if layout.names_key not in meta:
        raise DataError(f"{files.path}: {layout.meta} lacks the key {layout.names_key!r}")
    names = meta[layout.names_key]
    if not isinstance(names, (list, tuple)):
        raise DataError(f"{files.path}: {layout.meta} holds {type(names).__name__} class names, expected a list")
    classes = [c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in names]
    train_y = np.concatenate([y for _, y in train])
    if not len(train_y):
        raise DataError(f"{files.path}: the training batches hold no images")
    if max(train_y.max(initial=0), test_y.max(initial=0)) >= len(classes):
        raise DataError(f"{files.path}: labels exceed the {len(classes)} class names of {layout.meta}")
    if min(train_y.min(initial=0), test_y.min(initial=0)) < 0:
        raise DataError(f"{files.path}: negative labels; CIFAR labels are 0..{len(classes) - 1}")
    return ImageDataset(
        name,
        torch.from_numpy(np.concatenate([x for x, _ in train])),
        torch.from_numpy(train_y),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y),
        classes,
    )

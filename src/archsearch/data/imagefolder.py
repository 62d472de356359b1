"""Image folders: ``train/<class>/<image>`` and ``test/<class>/<image>``, as a folder or a tar archive.

Classes are the sorted names of the training class folders; images are taken in sorted order within a
class, so the label order (and so a seeded subset) does not depend on how the source stores them.
Images are decoded with PIL by a pool of processes; only the images asked for are decoded.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from archsearch.checks import integer
from archsearch.data.dataset import ImageDataset, _limit_indices
from archsearch.data.files import SourceFiles
from archsearch.errors import DataError

# PIL logs what it finds wrong in a damaged file ("More samples per pixel than can be decoded") before it
# raises; with no logging configured Python prints that to stderr. The DataError raised here says it already,
# so PIL's records go nowhere unless the application configures logging itself.
logging.getLogger("PIL").addHandler(logging.NullHandler())

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
#: PIL modes decoded as one grey channel; every other mode becomes RGB
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
#: below this many images a process pool costs more than it saves
MIN_IMAGES_FOR_POOL = 2000
CHUNK = 500


@dataclass
class FolderIndex:
    prefix: str
    classes: list[str]
    train: list[tuple[str, int]]  # (file name, label)
    test: list[tuple[str, int]]


def index_image_folder(files: SourceFiles) -> FolderIndex | None:
    """The train/test image lists, or None where the source has no ``train/<class>/<image>`` files."""
    found: dict[str, dict[str, dict[str, list[str]]]] = {}  # prefix -> split -> class -> files
    for name in files.names:
        parts = name.split("/")
        if len(parts) < 3 or parts[-3] not in ("train", "test") or any(p.startswith(".") for p in parts):
            continue
        if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
            continue
        prefix = "/".join(parts[:-3])
        found.setdefault(prefix, {}).setdefault(parts[-3], {}).setdefault(parts[-2], []).append(name)
    complete = {p: s for p, s in found.items() if "train" in s and "test" in s}
    if not complete:
        if found:
            prefix, splits = next(iter(found.items()))
            lacking = "test" if "train" in splits else "train"
            raise DataError(f"{files.path}: image folder '{prefix or '.'}' has no {lacking}/<class>/ images")
        return None
    if len(complete) > 1:
        raise DataError(f"{files.path}: several image folders ({', '.join(sorted(complete))}); point at one of them")
    prefix, splits = next(iter(complete.items()))
    classes = sorted(splits["train"])
    unknown = sorted(set(splits["test"]) - set(classes))
    if unknown:
        raise DataError(f"{files.path}: test classes {', '.join(unknown)} have no train/<class>/ folder")

    def listing(split: str) -> list[tuple[str, int]]:
        return [(f, label) for label, c in enumerate(classes) for f in sorted(splits[split].get(c, []))]

    return FolderIndex(prefix, classes, listing("train"), listing("test"))


@contextmanager
def _opened(blob: bytes, name: str):
    """The image in ``blob``, opened lazily (size and mode known, pixels not decoded yet); DataError where
    it is no image PIL reads or a decompression bomb (an image whose declared size would take gigabytes)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as image:
                yield image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"{name} is too large to decode safely ({error}); remove it or shrink it") from None
    except Image.UnidentifiedImageError:
        raise DataError(f"{name} is not an image PIL can read; remove it or replace it") from None
    except DataError:
        raise
    except Exception as error:  # decoders of damaged files raise many kinds (OSError, SyntaxError, struct.error)
        raise DataError(f"cannot decode {name} ({type(error).__name__}: {error}); remove it or replace it") from None


def _decode_chunk(task: tuple[list[bytes], list[str], str, tuple[int, int], str]) -> tuple[np.ndarray | None, str]:
    """Decode images to (k, H, W, C) uint8; on failure, (None, what went wrong).

    Failures are returned, not raised, so that a pool worker hands back a message rather than an
    exception whose type the parent would have to re-import.
    """
    blobs, names, mode, size, first = task
    channels = 1 if mode == "L" else 3
    out = np.empty((len(blobs), size[1], size[0], channels), dtype=np.uint8)
    try:
        for i, (blob, name) in enumerate(zip(blobs, names)):
            with _opened(blob, name) as image:
                if image.size != size:  # checked before decoding: the pixels of a wrong size are never read
                    return None, (f"{name} is {image.size[0]}x{image.size[1]}, the first image {first} "
                                  f"{size[0]}x{size[1]}; the images of a dataset must share one size")
                out[i] = np.asarray(image.convert(mode)).reshape(size[1], size[0], channels)
    except DataError as error:
        return None, str(error)
    return out, ""


def decode_images(
    blobs: list[bytes], names: list[str], *, channels: int | None = None, workers: int | None = None,
    quiet: bool = False, desc: str = "decoding images",
) -> np.ndarray:
    """Decode encoded images to one (N, C, H, W) uint8 array; every image must have the first one's size.

    ``channels`` 1 or 3 forces grey or RGB; None takes grey if the first image is grey, else RGB.
    """
    if not blobs:
        raise DataError("no images to decode")
    with _opened(blobs[0], names[0]) as first:
        mode = "L" if channels == 1 or (channels is None and first.mode in GREY_MODES) else "RGB"
        size = first.size
    tasks = [(blobs[i : i + CHUNK], names[i : i + CHUNK], mode, size, names[0]) for i in range(0, len(blobs), CHUNK)]
    workers = min(os.cpu_count() or 1, 8) if workers is None else integer(workers, "workers", minimum=1)
    parts = []
    with tqdm(total=len(blobs), desc=desc, unit="img", disable=quiet, leave=False) as bar:
        if workers > 1 and len(blobs) >= MIN_IMAGES_FOR_POOL:
            # fork: the workers need only PIL and numpy, and start at once (spawn would re-import torch)
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with context.Pool(workers) as pool:
                for part in pool.imap(_decode_chunk, tasks):
                    parts.append(_checked(part))
                    bar.update(len(parts[-1]))
        else:
            for task in tasks:
                parts.append(_checked(_decode_chunk(task)))
                bar.update(len(parts[-1]))
    return np.ascontiguousarray(np.concatenate(parts).transpose(0, 3, 1, 2))


def _checked(part: tuple[np.ndarray | None, str]) -> np.ndarray:
    array, problem = part
    if array is None:
        raise DataError(problem)
    return array


def read_image_folder(
    files: SourceFiles, index: FolderIndex, name: str, *, limit_train=None, limit_test=None, limit_seed: int = 0,
    channels: int | None = None, workers: int | None = None, quiet: bool = False,
) -> ImageDataset:
    """Decode the images of ``index`` (only a stratified subset of each split where limits are given)."""
    splits = {}
    for split, entries, limit in (("train", index.train, limit_train), ("test", index.test, limit_test)):
        labels = np.array([label for _, label in entries], dtype=np.int64)
        keep = _limit_indices(labels, limit, limit_seed, f"limit_{split}")
        if keep is not None:
            entries, labels = [entries[i] for i in keep], labels[keep]
        splits[split] = (entries, labels)
    selected = splits["train"][0] + splits["test"][0]
    if not selected:
        raise DataError(f"{files.path}: the image folder holds no images")
    images = decode_images(
        [files.read(f) for f, _ in selected], [f for f, _ in selected], channels=channels, workers=workers,
        quiet=quiet, desc=f"decoding {name} images",
    )
    n_train = len(splits["train"][0])
    return ImageDataset(
        name,
        torch.from_numpy(images[:n_train].copy()),
        torch.from_numpy(splits["train"][1]),
        torch.from_numpy(images[n_train:].copy()),
        torch.from_numpy(splits["test"][1]),
        list(index.classes),
    )

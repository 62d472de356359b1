"""The dataset registry and ``load_dataset``.

Every loader is registered under its name and called as ``loader(data_dir, context, **options)``; its
keyword-only parameters are the options it takes. Sources on disk are decoded once and cached
(see ``archsearch.data.cache``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from archsearch.checks import fits_in_memory, integer, optional_integer
from archsearch.checks import seed as check_seed
from archsearch.data import cache
from archsearch.data.cifar import CIFAR10, CIFAR100, CifarLayout, find_layout, read_cifar
from archsearch.data.dataset import ImageDataset, stratified_sample
from archsearch.data.files import open_source, source_path
from archsearch.data.imagefolder import index_image_folder, read_image_folder
from archsearch.errors import ConfigError, DataError
from archsearch.registry import Registry

Loader = Callable[..., ImageDataset]
DATASETS: Registry[Loader] = Registry("dataset")

IMAGE_FOLDER = "an image folder with train/<class>/ and test/<class>/"


@dataclass(frozen=True)
class LoadContext:
    """What every loader is told besides its own options."""

    cache_dir: str | os.PathLike | None = None
    quiet: bool = False
    limit_train: int | None = None
    limit_test: int | None = None
    limit_seed: int = 0

    @property
    def limits(self) -> dict:
        return {"limit_train": self.limit_train, "limit_test": self.limit_test, "limit_seed": self.limit_seed}

    def limit(self, dataset: ImageDataset) -> ImageDataset:
        if self.limit_train is None and self.limit_test is None:
            return dataset
        return dataset.limited(self.limit_train, self.limit_test, self.limit_seed)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    quiet: bool = False,
    limit_train: int | None = None,
    limit_test: int | None = None,
    limit_seed: int = 0,
    **options,
) -> ImageDataset:
    """Load the dataset ``name`` (see ``DATASETS.names()``).

    ``data_dir`` is where a dataset on disk lies (ignored by the built-in ``digits`` and ``synthetic``);
    ``limit_train`` / ``limit_test`` keep a class-stratified subset drawn with ``limit_seed``.
    """
    loader = DATASETS.get(name)
    accepted = [p.name for p in inspect.signature(loader).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"options: {', '.join(accepted)}" if accepted else "no options"
        raise ConfigError(f"dataset '{name}' does not take {', '.join(unknown)} ({takes})")
    if cache_dir is not None:
        cache.cache_root(cache_dir)  # checks it is a path, even for the datasets that never cache
    context = LoadContext(cache_dir, quiet, optional_integer(limit_train, "limit_train", minimum=1),
                          optional_integer(limit_test, "limit_test", minimum=1), check_seed(limit_seed, "limit_seed"))
    return loader(data_dir, context, **options)


# -- built in ------------------------------------------------------------------------------------
DIGITS_TEST_SIZE = 360  # of 1,797: a 1,437 / 360 train/test split (our choice; the set has no official split)
DIGITS_SPLIT_SEED = 0


@DATASETS.register("digits")
def load_digits(data_dir, context: LoadContext) -> ImageDataset:
    """scikit-learn's 8x8 handwritten digits (UCI optdigits test set): 1,797 grey images, 10 classes.

    Pixel counts 0..16 are scaled to 0..255 (``round(v * 255 / 16)``); the test set is a fixed stratified
    draw of 360 images.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    test = stratified_sample(labels, DIGITS_TEST_SIZE, np.random.default_rng(DIGITS_SPLIT_SEED))
    train = np.setdiff1d(np.arange(len(labels)), test, assume_unique=True)
    dataset = ImageDataset(
        "digits",
        torch.from_numpy(images[train]),
        torch.from_numpy(labels[train]),
        torch.from_numpy(images[test]),
        torch.from_numpy(labels[test]),
        [str(d) for d in range(10)],
    )
    return context.limit(dataset)


@DATASETS.register("synthetic")
def load_synthetic(
    data_dir, context: LoadContext, *, num_train: int = 512, num_test: int = 128, channels: int = 3,
    size: int = 32, num_classes: int = 10, seed: int = 0,
) -> ImageDataset:
    """Uniform random uint8 images with balanced labels (shuffled), for smoke tests and timing."""
    for key, value in (("num_train", num_train), ("num_test", num_test), ("channels", channels),
                       ("size", size), ("num_classes", num_classes)):
        integer(value, f"synthetic option {key}", minimum=1)
    if num_classes > num_train + num_test:  # a class of no image; and a list of 10**20 names would fill memory
        raise ConfigError(f"synthetic option num_classes={num_classes} exceeds the {num_train + num_test} images")
    fits_in_memory((num_train + num_test) * channels * size * size, "the synthetic dataset")
    generator = torch.Generator().manual_seed(check_seed(seed, "synthetic option seed"))

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, channels, size, size), generator=generator, dtype=torch.uint8)

    def labels(n: int) -> torch.Tensor:
        return (torch.arange(n) % num_classes)[torch.randperm(n, generator=generator)]

    train_x, train_y = images(num_train), labels(num_train)
    test_x, test_y = images(num_test), labels(num_test)
    dataset = ImageDataset("synthetic", train_x, train_y, test_x, test_y, [str(c) for c in range(num_classes)])
    return context.limit(dataset)


# -- on disk -------------------------------------------------------------------------------------
def load_from_disk(
    name: str, data_dir, context: LoadContext, layouts: tuple[CifarLayout, ...], expected: str,
    num_classes: int | None, channels: int | None = None, workers: int | None = None,
) -> ImageDataset:
    """A CIFAR python folder (any of ``layouts``) or an image folder, each plain or as a tar archive.

    The cache holds the full dataset where it was decoded in full (limits are then applied to it), or
    the limited subset where only that was decoded: both give the same subset.
    """
    path = source_path(data_dir, name, expected)  # before anything opens it
    workers = optional_integer(workers, "workers", minimum=1)
    shape = {"channels": channels}
    full_entry = cache.cache_file(name, path, shape, context.cache_dir)
    dataset = cache.load_cached(full_entry, name)
    if dataset is not None:
        return context.limit(dataset)
    limited = context.limit_train is not None or context.limit_test is not None
    limited_entry = cache.cache_file(name, path, {**shape, **context.limits}, context.cache_dir) if limited else None
    if limited_entry is not None and (dataset := cache.load_cached(limited_entry, name)) is not None:
        return dataset

    files = open_source(path, name, expected)
    for layout in layouts:
        prefix = find_layout(files, layout)
        if prefix is not None:
            dataset = read_cifar(files, prefix, layout, name)
            cache.store(full_entry, dataset)
            return context.limit(dataset)
    index = index_image_folder(files)
    if index is None:
        raise DataError(f"{path} holds none of the expected files; {expected}")
    if num_classes is not None and len(index.classes) != num_classes:
        raise DataError(
            f"{path}: an image folder of {len(index.classes)} classes, but {name} has {num_classes} classes; {expected}"
        )
    dataset = read_image_folder(
        files, index, name, **context.limits, channels=channels, workers=workers, quiet=context.quiet
    )
    cache.store(limited_entry or full_entry, dataset)
    return dataset


def _expected(folder: str) -> str:
    return f"expected a {folder} folder, its .tar.gz, or {IMAGE_FOLDER} (a folder, or its .tar.gz / .tgz)"


@DATASETS.register("cifar10")
def load_cifar10(data_dir, context: LoadContext, *, workers: int | None = None) -> ImageDataset:
    """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images, 10 classes."""
    return load_from_disk("cifar10", data_dir, context, (CIFAR10,), _expected(CIFAR10.folder), 10, workers=workers)


@DATASETS.register("cifar100")
def load_cifar100(data_dir, context: LoadContext, *, workers: int | None = None) -> ImageDataset:
    """CIFAR-100: 50,000 train / 10,000 test 32x32 RGB images, 100 (fine) classes."""
    return load_from_disk(
        "cifar100", data_dir, context, (CIFAR100,), _expected(CIFAR100.folder), 100, workers=workers
    )


@DATASETS.register("imagefolder")
def load_imagefolder(
    data_dir, context: LoadContext, *, channels: int | None = None, workers: int | None = None
) -> ImageDataset:
    """Any image folder ``train/<class>/*`` + ``test/<class>/*``; images of one size (``channels`` 1 or 3
    forces grey or RGB, else the first image decides)."""
    if isinstance(channels, bool) or channels not in (None, 1, 3):
        raise ConfigError(f"imagefolder channels must be 1, 3 or None, got {channels!r}")
    expected = f"expected {IMAGE_FOLDER} (a folder, or its .tar.gz / .tgz)"
    return load_from_disk("imagefolder", data_dir, context, (), expected, None, channels, workers)


# -- text ----------------------------------------------------------------------------------------
#: datasets of tokens, not images: listed here so that their names are known, loaded by their own modules
TEXT_DATASETS = ("ptb",)


@DATASETS.register("ptb")
def load_ptb_images(data_dir, context: LoadContext) -> ImageDataset:
    """Penn Treebank (word level): a text corpus for the darts-rnn space's language model, not images."""
    raise DataError("dataset 'ptb' is a text corpus, not images: train a language model on it "
                    "(archsearch train DARTS_V2 --space darts-rnn --data ptb --data-dir DIR) or read it with "
                    "archsearch.data.ptb.load_ptb; image searches and training need an image dataset")

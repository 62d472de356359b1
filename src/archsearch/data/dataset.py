"""An image dataset held in memory as uint8 tensors, and its splits.

Images are ``(N, C, H, W)`` uint8 (0..255), labels ``(N,)`` int64. Splits are stratified by class and
seeded, so the same seed always gives the same partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from archsearch.checks import number, optional_integer
from archsearch.checks import seed as check_seed
from archsearch.errors import ConfigError, ShapeError


@dataclass
class Subset:
    """Images and labels of one split; ``indices`` locate them in the training set where they came from it."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` items drawn without replacement, each class in proportion to its size.

    Class quotas are ``n * count_c / N`` rounded down, and the items left over go to the classes with
    the largest fractional remainders (ties to the lower label), so the quotas sum to exactly ``n``.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(np.int64)
    leftover = n - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:leftover]] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, np.int64)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of uint8 images, on the 0..1 scale.

    Exact and light on memory: computed from a 256-bin histogram per channel, never a float copy.
    """
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1).to(torch.int64), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total  # E[v]
        var = (counts * (values - mean) ** 2).sum() / total  # E[(v - E[v])^2]
        means.append(float(mean))
        stds.append(float(var.sqrt()))
    return tuple(means), tuple(stds)


@dataclass
class ImageDataset:
    """A labelled train/test image dataset held in memory."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str] = field(default_factory=list)
    #: (mean, std) of the training images where already known (a cache stores them); computed otherwise
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise ShapeError(
                    f"{self.name} {split} images must be uint8 (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ShapeError(
                    f"{self.name} {split} labels must be int64 ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}"
                )
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise ShapeError(
                f"{self.name}: train images {tuple(self.train_x.shape[1:])} and test images "
                f"{tuple(self.test_x.shape[1:])} differ in shape"
            )
        if not self.classes:
            labels = torch.cat([self.train_y, self.test_y])
            top = int(labels.max()) if len(labels) else -1
            self.classes = [str(i) for i in range(top + 1)]

    # -- shape ----------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        """Side of the (square) images; non-square images report their height."""
        return int(self.train_x.shape[2])

    def _stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.stats is None:
            self.stats = channel_stats(self.train_x)
        return self.stats

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the training images (0..1 scale)."""
        return self._stats()[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel (population) standard deviation of the training images (0..1 scale)."""
        return self._stats()[1]

    # -- splits ---------------------------------------------------------------------------------
    def _train_subset(self, indices: np.ndarray) -> Subset:
        index = torch.as_tensor(indices, dtype=torch.int64)
        return Subset(self.train_x[index], self.train_y[index], index)

    def split(self, valid_fraction: float = 0.1, seed: int = 0) -> tuple[Subset, Subset]:
        """(train, valid) partition of the training set; valid holds ``round(valid_fraction * N)`` images."""
        if not 0.0 < number(valid_fraction, "valid_fraction") < 1.0:
            raise ConfigError(f"valid_fraction must lie strictly between 0 and 1, got {valid_fraction}")
        n = len(self.train_y)
        n_valid = int(round(valid_fraction * n))
        if not 0 < n_valid < n:
            raise ConfigError(f"valid_fraction={valid_fraction} of {n} training images leaves an empty split")
        valid = stratified_sample(self.train_y.numpy(), n_valid, np.random.default_rng(check_seed(seed)))
        train = np.setdiff1d(np.arange(n), valid, assume_unique=True)
        return self._train_subset(train), self._train_subset(valid)

    def search_split(self, seed: int = 0) -> tuple[Subset, Subset]:
        """Two disjoint halves of the training set, for the weights and the architecture of a bilevel search.

        DARTS (Liu et al., 2019, sec. 3.1) searches on half of the CIFAR-10 training set and uses the
        other half as its validation set; here the halves are drawn stratified and seeded
        (DARTS takes the first and second half in file order).
        """
        valid_half = stratified_sample(self.train_y.numpy(), len(self.train_y) // 2,
                                       np.random.default_rng(check_seed(seed)))
        train_half = np.setdiff1d(np.arange(len(self.train_y)), valid_half, assume_unique=True)
        return self._train_subset(train_half), self._train_subset(valid_half)

    def test_set(self) -> Subset:
        return Subset(self.test_x, self.test_y)

    def limited(self, limit_train: int | None, limit_test: int | None, seed: int = 0) -> ImageDataset:
        """A copy keeping a seeded, class-stratified subset of each split (None keeps all)."""
        train = _limit_indices(self.train_y.numpy(), limit_train, seed, "limit_train")
        test = _limit_indices(self.test_y.numpy(), limit_test, seed, "limit_test")
        return ImageDataset(
            self.name,
            self.train_x if train is None else self.train_x[torch.as_tensor(train)],
            self.train_y if train is None else self.train_y[torch.as_tensor(train)],
            self.test_x if test is None else self.test_x[torch.as_tensor(test)],
            self.test_y if test is None else self.test_y[torch.as_tensor(test)],
            list(self.classes),
        )

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
            f"classes={self.num_classes}, shape={tuple(self.train_x.shape[1:])})"
        )


def _limit_indices(labels: np.ndarray, limit: int | None, seed: int, what: str) -> np.ndarray | None:
    """Indices of a stratified subset of ``limit`` items, or None to keep everything."""
    limit = optional_integer(limit, what, minimum=1)
    if limit is None or limit >= len(labels):
        return None
    return stratified_sample(labels, limit, np.random.default_rng(check_seed(seed, "limit_seed")))

"""Batches of a Subset on a device: shuffled, augmented and normalised there, reproducible by epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from archsearch.data.augment import Augment
from archsearch.data.dataset import Subset
from archsearch.errors import ConfigError, ShapeError
from archsearch.runtime import resolve_device


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator determined by (seed, epoch) alone, whatever device the batches go to."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


class BatchLoader:
    """Iterates ``(x, y)`` batches: x float32 normalised ``(x / 255 - mean) / std``, y int64, both on ``device``.

    The images move to ``device`` once, as uint8; each pass then indexes, augments and normalises whole
    batches there. A pass draws its permutation and its augmentation from a generator seeded by
    ``(seed, epoch)``; each pass uses ``epoch`` and then moves it on by one, and ``set_epoch(e)`` chooses the
    epoch the next pass uses, so a run resumed from ``state_dict()`` sees the same batches.
    """

    def __init__(
        self,
        subset: Subset,
        batch_size: int,
        *,
        shuffle: bool = True,
        augment: Augment | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        drop_last: bool = False,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if subset.x.dtype != torch.uint8 or subset.x.dim() != 4:
            raise ShapeError(
                f"BatchLoader expects uint8 images (N, C, H, W), got {subset.x.dtype} {tuple(subset.x.shape)}"
            )
        if drop_last and len(subset) < batch_size:
            raise ConfigError(f"drop_last with batch_size={batch_size} leaves no batch of {len(subset)} images")
        self.device = resolve_device(device)
        self.x = subset.x.to(self.device)
        self.y = subset.y.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.seed = int(seed)
        self.epoch = 0
        channels = self.x.shape[1]
        self.mean = self._channel_vector(mean, 0.0, channels, "mean")
        self.std = self._channel_vector(std, 1.0, channels, "std")
        if (self.std <= 0).any():
            raise ConfigError(f"std must be positive, got {std}")

    def _channel_vector(self, values, default: float, channels: int, what: str) -> torch.Tensor:
        values = [default] * channels if values is None else [float(v) for v in values]
        if len(values) != channels:
            raise ShapeError(f"{what} has {len(values)} entries for images with {channels} channels")
        return torch.tensor(values, dtype=torch.float32, device=self.device).view(1, channels, 1, 1)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        n = len(self.y)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        return self._batches(order.to(self.device), generator)

    def _batches(self, order: torch.Tensor, generator: torch.Generator):
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.x[index].float().div_(255.0)
            if self.augment is not None:
                x = self.augment(x, generator)
            yield (x - self.mean) / self.std, self.y[index]

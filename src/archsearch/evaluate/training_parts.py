"""The pieces a training run is built from: its data splits, schedule and mixed precision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from archsearch.evaluate.recipes import Recipe

#: the validation split is drawn with this seed whatever the run's seed, so runs compare on one split
VALID_SPLIT_SEED = 0


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16; None (float32) off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    """Cosine from lr to lr_min over the run, stepped per epoch or per batch (see Recipe.schedule_unit)."""
    total = recipe.epochs * (steps_per_epoch if recipe.schedule_unit == "step" else 1)
    if recipe.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=recipe.lr_min)


def logits_of(output):
    """The logits of a network's output (a DARTS network in training adds the auxiliary head's)."""
    return output if torch.is_tensor(output) else output[0]


@dataclass
class TrainingData:
    """The dataset and its train, validation (None without one) and test subsets."""

    dataset: Any
    train: Any
    valid: Any | None
    test: Any


def load_data(dataset, data_dir, recipe: Recipe, quiet: bool, limit_train, limit_test) -> TrainingData:
    from archsearch.data import Subset, load_dataset

    ds = dataset if not isinstance(dataset, str) else load_dataset(
        dataset, data_dir, quiet=quiet, limit_train=limit_train, limit_test=limit_test)
    if recipe.valid_fraction > 0:
        train, valid = ds.split(recipe.valid_fraction, seed=VALID_SPLIT_SEED)
    else:
        train, valid = Subset(ds.train_x, ds.train_y), None
    return TrainingData(ds, train, valid, ds.test_set())

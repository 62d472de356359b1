"""FairDARTS' relaxation (Chu, Zhou, Zhang & Li, ECCV 2020): an independent sigmoid per op.

w_k = sigmoid(alpha_k) on every edge, so ops cooperate instead of competing for a softmax's unit
mass and several may be active on one edge. The zero-one loss

    L_01 = -w01 * mean_k (sigmoid(alpha_k) - 0.5)^2          (FairDARTS eq. 5)

is added to the validation loss and pushes each weight towards 0 or 1, which shrinks the gap
between the relaxed supernet and the thresholded cell. The mean runs over every entry of every
architecture tensor (the reference ``ConvSeparateLoss``, xiaomi-automl/FairDARTS
``fairdarts/separate_loss.py:16``, takes the MSE over the sigmoid of the normal and reduce alphas
concatenated at ``train_search.py:209``). Its alphas have a column per op of the 7 ``PRIMITIVES``
(``genotypes.py:8-16``), no ``none``; the FairDARTS presets give the supernet ``exclude_ops: [none]`` so
that ours have the same columns. Where a ``none`` column is kept (``exclude_ops: []``) it enters the
mean, though its weight changes no output, and the pull on every real op is (ops - 1)/ops of the
reference's (7/8 on DARTS, 4/5 on NAS-Bench-201).

w01 = 10 (FairDARTS Sec. 4, and ``--aux_loss_weight 10`` of xiaomi-automl/FairDARTS
``train_search.py``), applied from the first step as the released code does. ``warmup_epochs``
(our option, default 0) ramps it linearly from 0 over the first epochs instead.
"""

from __future__ import annotations

import torch

from archsearch.errors import ConfigError
from archsearch.relax.base import RELAXATIONS, Relaxation


@RELAXATIONS.register("sigmoid")
class Sigmoid(Relaxation):
    def __init__(self, w01: float = 10.0, warmup_epochs: int = 0):
        if w01 < 0:
            raise ConfigError(f"the zero-one loss weight w01 must be >= 0, got {w01}")
        if warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        self.w01, self.warmup_epochs = float(w01), int(warmup_epochs)
        self.epoch = 0

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(alpha)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        self.epoch = epoch

    def zero_one_weight(self) -> float:
        if self.warmup_epochs == 0:
            return self.w01
        return self.w01 * min(1.0, (self.epoch + 1) / self.warmup_epochs)

    def zero_one_loss(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor:
        """-w01 * mean((sigmoid(alpha) - 0.5)^2) over all architecture entries."""
        weights = torch.cat([torch.sigmoid(a).reshape(-1) for a in alphas.values()])
        return -self.zero_one_weight() * ((weights - 0.5) ** 2).mean()

    def extra_loss(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.w01 == 0:
            return None
        return self.zero_one_loss(alphas)

    def describe(self, view) -> dict:
        with torch.no_grad():
            value = self.zero_one_loss(view.supernet.named_arch_parameters())
        return {"zero_one_loss": float(value), "w01": self.zero_one_weight()}

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state.get("epoch", 0)

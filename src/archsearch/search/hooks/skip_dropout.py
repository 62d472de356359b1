"""P-DARTS' dropout on skip connections (Chen, Xie, Wu & Tian, ICCV 2019; chenxin061/pdarts
``train_search.py``): a rate per epoch, decayed within each stage of the progressive search."""

from __future__ import annotations

import math

from archsearch.search.hooks.base import EpochHook
from archsearch.spaces.partial import set_skip_dropout


def skip_dropout_rate(initial: float, epoch: int, epochs: int, warmup: int, decay: float) -> float:
    """pdarts ``train_search.py``: p = p0 (E - e - 1) / E while only the weights train (e < warmup), then
    p = p0 exp(-(e - warmup) decay); e counts from 0 within the stage."""
    if epoch < warmup:
        return initial * (epochs - epoch - 1) / epochs
    return initial * math.exp(-(epoch - warmup) * decay)


class SkipDropoutSchedule(EpochHook):
    """Sets the skip-dropout rate of each epoch before it trains, and logs it."""

    def __init__(self, initial: float, decay: float):
        self.initial, self.decay = float(initial), float(decay)

    def rate(self, view) -> float:
        c = view.config
        return skip_dropout_rate(self.initial, view.epoch, c.epochs, c.arch_warmup_epochs, self.decay)

    def on_epoch_start(self, view) -> None:
        set_skip_dropout(view.supernet, self.rate(view))

    def record(self, view) -> dict:
        return {"skip_dropout": round(self.rate(view), 6)}

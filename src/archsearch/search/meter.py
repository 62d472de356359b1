"""Running loss and accuracy over the batches of an epoch."""

from __future__ import annotations

import math

import torch


class Meter:
    """Sums of a split's loss and correct predictions, weighted by batch size; ``result()`` gives the means.

    The search's ``arch_step`` and ``weight_step`` update one when handed it (an epoch's statistics)."""

    def __init__(self):
        self.loss = self.correct = self.count = 0.0

    def update(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        n = y.shape[0]
        self.loss += float(loss) * n
        self.correct += float((logits.argmax(dim=1) == y).sum())
        self.count += n

    def result(self) -> tuple[float, float]:
        """(mean loss, accuracy in %); NaN for both before any batch."""
        if not self.count:
            return math.nan, math.nan
        return self.loss / self.count, 100.0 * self.correct / self.count


def running_figures(train: Meter, valid: Meter) -> dict:
    """A progress bar's figures: an epoch's running training and validation loss and accuracy."""
    (train_loss, train_acc), (valid_loss, valid_acc) = train.result(), valid.result()
    return {"loss": train_loss, "acc": train_acc, "val_loss": valid_loss, "val_acc": valid_acc}

"""What the search loop asks of an architecture optimizer beyond ``torch.optim.Optimizer``."""

from __future__ import annotations

import torch


class ArchitectureOptimizer:
    """Mixed into the architecture optimizers (``class X(ArchitectureOptimizer, torch.optim.Optimizer)``).

    The defaults suit an optimizer with no horizon and nothing to log, as Adam."""

    #: True where ``plan_rounds`` fixes step sizes or schedules from the number of steps T: such a run's
    #: number of epochs cannot change when it resumes
    plans_rounds = False
    #: False for an optimizer that never moves alpha (RSPS: ``arch_optimizer: none``): the loop then takes no
    #: architecture step at all, so no search-valid forward is spent on it
    learns = True

    def plan_rounds(self, rounds: int) -> None:
        """Called once with T, epochs x steps per epoch, before the first step."""

    def record(self) -> dict:
        """Fields added to each epoch's metrics record."""
        return {}


class Adam(ArchitectureOptimizer, torch.optim.Adam):
    """``torch.optim.Adam`` as an architecture optimizer (DARTS' choice); nothing added."""


class NoArchitectureLearning(ArchitectureOptimizer, torch.optim.Optimizer):
    """Leaves alpha where it is: random-sampling one-shot search (RSPS) learns no architecture weights.
    The loop skips the architecture step (``learns``), so ``step`` is never asked to compute a loss."""

    learns = False

    def __init__(self, params):
        super().__init__(params, {})

    def step(self, closure=None):
        return None

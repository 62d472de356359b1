"""What the search loop asks of an architecture optimizer beyond ``torch.optim.Optimizer``."""

from __future__ import annotations

import torch


class ArchitectureOptimizer:
    """Mixed into the architecture optimizers (``class X(ArchitectureOptimizer, torch.optim.Optimizer)``).

    The defaults suit an optimizer with no horizon and nothing to log, as Adam."""

    #: True where ``plan_rounds`` fixes step sizes or schedules from the number of steps T: such a run's
    #: number of epochs cannot change when it resumes
    plans_rounds = False

    def plan_rounds(self, rounds: int) -> None:
        """Called once with T, epochs x steps per epoch, before the first step."""

    def record(self) -> dict:
        """Fields added to each epoch's metrics record."""
        return {}


class Adam(ArchitectureOptimizer, torch.optim.Adam):
    """``torch.optim.Adam`` as an architecture optimizer (DARTS' choice); nothing added."""

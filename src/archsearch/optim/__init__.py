"""Architecture optimizers, each a ``torch.optim.Optimizer``; importing this package registers them all
in ``ARCH_OPTIMIZERS`` (optim/arch_optimizers.py)."""

from archsearch.optim.base import Adam, ArchitectureOptimizer
from archsearch.optim.dscd import DSCD
from archsearch.optim.expgrad import ExpGrad
from archsearch.optim.arch_optimizers import ARCH_OPTIMIZERS
from archsearch.optim.vadam import VAdam, VON, Vprop

__all__ = ["ARCH_OPTIMIZERS", "Adam", "ArchitectureOptimizer", "DSCD", "ExpGrad", "VAdam", "VON", "Vprop"]

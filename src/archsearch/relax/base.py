"""The relaxation interface and its registry."""

from __future__ import annotations

import torch

from archsearch.registry import Registry
from archsearch.settings import build
from archsearch.spaces.supernet import OpWeights

RELAXATIONS: Registry[type["Relaxation"]] = Registry("relaxation")


class Relaxation(OpWeights):
    """alpha (edges, ops) -> op weights (edges, ops), the ``OpWeights`` a supernet is handed.

    ``hard``: the weights are one-hot (straight-through), so the supernet computes one op per edge.
    ``set_epoch`` lets schedules (temperatures) follow the search; ``extra_loss`` adds a
    regulariser to L_val (FairDARTS' zero-one loss, DrNAS' KL term); both default to nothing.
    """

    #: False while the search evaluates the learned mean (diagnostics, logging): a sampling
    #: relaxation then returns its deterministic weights, with gradient.
    sampling = True
    #: which step the loop is in, "arch" or "weights" (a relaxation may treat them differently)
    phase = "arch"
    #: the architecture gradient it is trained by (search/estimators.py): "pathwise" (through the op
    #: weights, DARTS' first or second order) or "reinforce" (a score function: ENAS' controller)
    estimator = "pathwise"

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        pass

    def extra_loss(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return None

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        """The weights that describe what was learned, for logging and argmax selection."""
        return self(alpha).detach()

    def attach(self, optimizer) -> None:
        """Called with the architecture optimizer once both exist (a relaxation may read its state)."""

    def bind(self, supernet, space=None) -> None:
        """Called with the supernet it weighs, once built, and its space (SNAS' resource costs read the
        supernet's ops; ENAS' controller samples the space's decisions)."""

    def arch_parameters(self, supernet) -> list[torch.Tensor]:
        """What the architecture optimizer steps (after ``bind``): the supernet's alphas, or a relaxation's
        own parameters (ENAS' controller)."""
        return supernet.arch_parameters()

    def describe(self, view) -> dict:
        """Fields this relaxation adds to each epoch's metrics record; ``view``: a SearchView (search/view.py)."""
        return {}

    def sampler(self, view):
        """rng -> genotype drawn from what was learned, for sample-and-rank selection; None where the
        relaxation defines no distribution over genotypes."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class use_mean:
    """Context in which a relaxation does not sample (Hessian estimates, logging)."""

    def __init__(self, relaxation: Relaxation):
        self.relaxation = relaxation

    def __enter__(self):
        self.previous, self.relaxation.sampling = self.relaxation.sampling, False
        return self.relaxation

    def __exit__(self, *exc):
        self.relaxation.sampling = self.previous


def build_relaxation(name: str, **options) -> Relaxation:
    return build(f"relaxation '{name}'", RELAXATIONS.get(name), options)

"""Synthetic multimodal test functions for comparing optimizers (Surjanovic & Bingham's Virtual
Library of Simulation Experiments, sfu.ca/~ssurjano): value, domain and global minimum.

Each function takes a tensor whose last dimension is the point (so a batch of points works) and is
differentiable with torch; ``minimum`` is the exact global minimum value for dimension D.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from archsearch.errors import UnknownNameError


@dataclass(frozen=True)
class TestFunction:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    low: float
    high: float
    #: the coordinate of the global minimiser (the same in every dimension for these functions)
    argmin: float
    #: global minimum value per dimension (f* = D * minimum_per_dim)
    minimum_per_dim: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def minimum(self, dim: int) -> float:
        return self.minimum_per_dim * dim


def styblinski_tang(x: torch.Tensor) -> torch.Tensor:
    """f(x) = 1/2 sum_i (x_i^4 - 16 x_i^2 + 5 x_i); per coordinate a global minimum at -2.903534 and a
    local one at 2.746803, so a point is globally optimal only if every coordinate is in the left basin."""
    return 0.5 * (x ** 4 - 16 * x ** 2 + 5 * x).sum(dim=-1)


def schwefel(x: torch.Tensor) -> torch.Tensor:
    """f(x) = 418.9829 D - sum_i x_i sin(sqrt|x_i|); global minimum 0 at x_i = 420.9687."""
    return 418.9828872724338 * x.shape[-1] - (x * torch.sin(torch.sqrt(x.abs()))).sum(dim=-1)


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    """f(x) = 10 D + sum_i (x_i^2 - 10 cos(2 pi x_i)); global minimum 0 at the origin."""
    return 10.0 * x.shape[-1] + (x ** 2 - 10.0 * torch.cos(2 * math.pi * x)).sum(dim=-1)


FUNCTIONS: dict[str, TestFunction] = {
    "styblinski-tang": TestFunction("styblinski-tang", styblinski_tang, -5.0, 5.0, -2.903534, -39.16616570377142),
    "schwefel": TestFunction("schwefel", schwefel, -500.0, 500.0, 420.9687, 0.0),
    "rastrigin": TestFunction("rastrigin", rastrigin, -5.12, 5.12, 0.0, 0.0),
}


def get_function(name: str) -> TestFunction:
    if not isinstance(name, str) or name not in FUNCTIONS:
        raise UnknownNameError("test function", name, FUNCTIONS)
    return FUNCTIONS[name]

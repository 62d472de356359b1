"""The one interface every search space offers, and the registry that names them.

A space is a set of genotypes (immutable, hashable descriptions of one architecture) with:
sampling and local moves for black-box search, a one-hot encoding for surrogates, a text codec,
a discrete network for training, and a supernet for differentiable search.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from archsearch.checks import integer
from archsearch.errors import InvalidGenotypeError, shown
from archsearch.registry import Registry

SPACES: Registry[type[SearchSpace]] = Registry("search space")

RandomSource = np.random.Generator | int | None


def positive_sizes(**sizes) -> tuple[int, ...]:
    """The sizes of a network (channels, cells, classes, ...), in the order given, each an integer >= 1."""
    return tuple(integer(value, name, minimum=1) for name, value in sizes.items())


def as_rng(rng: RandomSource) -> np.random.Generator:
    """Accept a Generator or a seed, so callers can write ``space.sample(0)``."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class SearchSpace(ABC):
    """A search space: genotypes, their codecs and the networks they describe."""

    name: str
    #: candidate operation names, in the column order of the architecture parameters
    ops: tuple[str, ...]
    #: the type of the space's genotypes, where it has one: ``parse`` refuses anything else
    genotype_type: type | None = None
    #: (decisions, choices per decision) where a genotype is one independent choice per decision, as a
    #: controller samples it (NAS-Bench-201: an op per edge; DARTS, NASNet: per node its inputs and their
    #: ops, ENAS' micro decisions); None where the space has no such form
    choice_shape: tuple[int, int] | None = None

    # -- genotypes ------------------------------------------------------------------------------
    @abstractmethod
    def sample(self, rng: RandomSource = None) -> Hashable:
        """A genotype drawn uniformly from the space."""

    @abstractmethod
    def mutate(self, genotype: Hashable, rng: RandomSource = None) -> Hashable:
        """A genotype that differs from ``genotype`` by exactly one change."""

    @abstractmethod
    def neighbours(self, genotype: Hashable) -> list[Hashable]:
        """Every genotype one change away, in a fixed order."""

    def enumerate(self) -> Iterator[Hashable]:
        """Every genotype of a finite space."""
        raise NotImplementedError(f"the {self.name} space is too large to enumerate")

    def size(self) -> int | None:
        """Number of genotypes, or None where it is not worth stating."""
        return None

    @abstractmethod
    def encode(self, genotype: Hashable) -> torch.Tensor:
        """A flat float one-hot encoding of fixed length (for surrogates and controllers)."""

    @abstractmethod
    def to_string(self, genotype: Hashable) -> str:
        """The space's text format (the one papers and benchmarks print)."""

    @abstractmethod
    def from_string(self, text: str) -> Hashable:
        """Parse the text format; raises InvalidGenotypeError with what was wrong."""

    def choice_sizes(self) -> list[int] | None:
        """Per decision, how many of the ``choice_shape[1]`` choices it has (the first that many), where
        decisions differ (NASNet: block b picks from b + 2 inputs); None where each has them all."""
        return None

    def from_choices(self, choices: Sequence[int]) -> Hashable:
        """The genotype of one choice index per decision (spaces with a ``choice_shape``)."""
        raise NotImplementedError(f"the {self.name} space is not one independent choice per decision")

    def to_choices(self, genotype: Hashable) -> list[int]:
        """The choice index of each decision of a genotype (spaces with a ``choice_shape``)."""
        raise NotImplementedError(f"the {self.name} space is not one independent choice per decision")

    def parse(self, genotype_or_text) -> Hashable:
        if isinstance(genotype_or_text, str):
            return self.from_string(genotype_or_text)
        if self.genotype_type is not None and not isinstance(genotype_or_text, self.genotype_type):
            raise InvalidGenotypeError(f"a {self.name} architecture is a {self.genotype_type.__name__} or its text, "
                                       f"got {type(genotype_or_text).__name__} {shown(genotype_or_text)}")
        return genotype_or_text

    # -- networks -------------------------------------------------------------------------------
    @abstractmethod
    def network(self, genotype: Hashable, num_classes: int = 10, **options) -> nn.Module:
        """The discrete network for training from scratch; forward returns logits
        (the DARTS network returns ``(logits, aux_logits)`` in training mode with an auxiliary head)."""

    @abstractmethod
    def supernet(self, num_classes: int = 10, **options) -> nn.Module:
        """The one-shot network with a mixed op on every edge (see ``archsearch.spaces.supernet``)."""

    @abstractmethod
    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        """Shape (edges, ops) of each architecture-parameter tensor, keyed by cell type."""

    @abstractmethod
    def genotype_from_weights(self, weights: dict[str, torch.Tensor], exclude: Sequence[str] = ("none",)) -> Hashable:
        """The discrete genotype that a set of per-edge op weights points to (argmax rule of the space)."""

    #: whether every genotype has tabulated accuracies (``ground_truth``): what tabular studies need
    has_ground_truth: bool = False

    def ground_truth(self, genotype: Hashable) -> dict | None:
        """Tabulated accuracies of a genotype where the space has a benchmark, else None."""
        return None

    # -- the cell as a graph ------------------------------------------------------------------------
    #: incoming edges a genotype keeps per intermediate node; None where every edge holds an op
    inputs_per_node: int | None = None

    def cell_graph(self) -> tuple[list[tuple[int, int]], set[int], set[int]] | None:
        """(source, target) node of each alpha row, the input nodes and the output nodes of a cell;
        None where the space does not describe its cells as such a graph."""
        return None

    def selected_edges(self, genotype: Hashable) -> dict[str, list[tuple[int, str]]] | None:
        """Per cell type, (alpha row, op) of each edge the genotype keeps; None where the space does not
        map its genotypes' edges to alpha rows."""
        return None

    def keep_edges(self, genotype: Hashable, rows: dict[str, Collection[int]]) -> Hashable:
        """``genotype`` with only the edges on the alpha rows ``rows[cell]`` kept, the others empty
        (spaces with ``inputs_per_node``, whose genotypes list a fixed number of inputs per node)."""
        raise NotImplementedError(f"the {self.name} space cannot leave edges of its genotypes empty")

    # -- drawing --------------------------------------------------------------------------------
    @abstractmethod
    def cell_edges(self, genotype: Hashable) -> dict[str, list[tuple[str, str, str]]]:
        """For drawing: per cell type, edges as (source node, target node, op name)."""


def get_space(name: str, **options) -> SearchSpace:
    """Build a registered space by name."""
    return SPACES.get(name)(**options)

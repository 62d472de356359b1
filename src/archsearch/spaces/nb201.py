"""NAS-Bench-201 (Dong & Yang, ICLR 2020): a cell of 4 nodes and 6 edges, 5 candidate ops.

This module is the space; the genotype and its arch string are the benchmark's (groundtruth/nb201_arch.py),
the network is in nb201_network.py, the supernet in nb201_supernet.py (its fused cell in nb201_fused.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch

from archsearch.groundtruth.nb201 import INDEX_TEXT, NB201Table
from archsearch.groundtruth.nb201_arch import EDGES, EXAMPLE, NUM_NODES, OPS, NB201Genotype, parse_arch_str, to_arch_str
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng, positive_sizes
from archsearch.spaces.nb201_network import Cell, NB201Network, ResNetBasicBlock, make_op
from archsearch.spaces.nb201_supernet import NB201Supernet, SearchCell

__all__ = ["NB201Space", "NB201Genotype", "NB201Network", "NB201Supernet", "Cell", "SearchCell", "ResNetBasicBlock",
           "make_op", "OPS", "EDGES", "NUM_NODES", "EXAMPLE", "parse_arch_str", "to_arch_str"]


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: 5^6 = 15,625 cells, ground truth in ``archsearch.groundtruth.nb201``."""

    name = "nb201"
    ops = OPS
    edges = EDGES
    genotype_type = NB201Genotype
    #: the evaluation network's sizes when neither the space nor the call gives them (the benchmark's)
    network_defaults = {"C": 16, "N": 5}
    choice_shape = (len(EDGES), len(OPS))
    has_ground_truth = True  # NAS-Bench-201 tabulates all 15,625 cells

    def __init__(self, C: int = 16, N: int = 5):
        self.C, self.N = positive_sizes(C=C, N=N)

    def sample(self, rng: RandomSource = None) -> NB201Genotype:
        rng = as_rng(rng)
        return NB201Genotype(tuple(OPS[i] for i in rng.integers(len(OPS), size=len(EDGES))))

    def mutate(self, genotype, rng: RandomSource = None) -> NB201Genotype:
        rng = as_rng(rng)
        genotype = self.parse(genotype)
        edge = int(rng.integers(len(EDGES)))
        choices = [op for op in OPS if op != genotype.ops[edge]]
        ops = list(genotype.ops)
        ops[edge] = choices[int(rng.integers(len(choices)))]
        return NB201Genotype(tuple(ops))

    def neighbours(self, genotype) -> list[NB201Genotype]:
        genotype = self.parse(genotype)
        out = []
        for edge in range(len(EDGES)):
            for op in OPS:
                if op != genotype.ops[edge]:
                    ops = list(genotype.ops)
                    ops[edge] = op
                    out.append(NB201Genotype(tuple(ops)))
        return out

    def enumerate(self) -> Iterator[NB201Genotype]:
        for ops in itertools.product(OPS, repeat=len(EDGES)):
            yield NB201Genotype(ops)

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def encode(self, genotype) -> torch.Tensor:
        genotype = self.parse(genotype)
        onehot = torch.zeros(len(EDGES), len(OPS))
        for edge, op in enumerate(genotype.ops):
            onehot[edge, OPS.index(op)] = 1.0
        return onehot.flatten()

    def from_choices(self, choices: Sequence[int]) -> NB201Genotype:
        return NB201Genotype(tuple(OPS[i] for i in choices))

    def to_choices(self, genotype) -> list[int]:
        return [OPS.index(op) for op in self.parse(genotype).ops]

    def to_string(self, genotype) -> str:
        return to_arch_str(self.parse(genotype))

    def from_string(self, text: str) -> NB201Genotype:
        """The official arch string, or the benchmark's index of one as text (``"6111"``)."""
        if isinstance(text, str) and INDEX_TEXT.fullmatch(text):
            table = NB201Table.load()
            return parse_arch_str(table.arch_strs[table.index_of(text)])
        return parse_arch_str(text)

    def index(self, genotype) -> int:
        """The benchmark's official index of a genotype."""
        return NB201Table.load().index_of(self.to_string(genotype))

    def ground_truth(self, genotype) -> dict:
        """200-epoch valid/test accuracy (%) on CIFAR-10, CIFAR-100 and ImageNet16-120."""
        results = NB201Table.load().query_all(self.to_string(genotype))
        out = {"index": next(iter(results.values())).index}
        out.update({name: {"valid": r.valid, "test": r.test} for name, r in results.items()})
        return out

    def network(self, genotype, num_classes: int = 10, C: int | None = None, N: int | None = None,
                in_channels: int = 3, affine: bool = True, track_running_stats: bool = True) -> NB201Network:
        """The benchmark's network; ``affine=False, track_running_stats=False``: the zero-cost code's cells."""
        return NB201Network(self.parse(genotype), self.C if C is None else C, self.N if N is None else N,
                            num_classes, in_channels, affine, track_running_stats)

    def supernet(self, num_classes: int = 10, relaxation=None, C: int | None = None, N: int | None = None,
                 track_running_stats: bool = True, in_channels: int = 3, partial_channels: int | None = None,
                 edge_normalization: bool = False, exclude_ops: Sequence[str] = ()) -> NB201Supernet:
        return NB201Supernet(self.C if C is None else C, self.N if N is None else N, num_classes, relaxation,
                             track_running_stats, in_channels, partial_channels, edge_normalization, exclude_ops)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {"cell": (len(EDGES), len(OPS))}

    def cell_graph(self) -> tuple[list[tuple[int, int]], set[int], set[int]]:
        return [(source, target) for target, source in EDGES], {0}, {NUM_NODES - 1}

    def genotype_from_weights(self, weights, exclude: Sequence[str] = ("none",)) -> NB201Genotype:
        w = weights["cell"].detach().clone().float()
        for name in exclude:
            w[:, OPS.index(name)] = float("-inf")
        return NB201Genotype(tuple(OPS[i] for i in w.argmax(dim=-1).tolist()))

    def selected_edges(self, genotype) -> dict[str, list[tuple[int, str]]]:
        """Every edge holds an op; alpha row k is EDGES[k]."""
        return {"cell": list(enumerate(self.parse(genotype).ops))}

    def cell_edges(self, genotype) -> dict[str, list[tuple[str, str, str]]]:
        genotype = self.parse(genotype)
        return {"cell": [(str(s), str(t), op) for (t, s), op in zip(EDGES, genotype.ops)]}

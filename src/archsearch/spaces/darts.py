"""The DARTS CNN search space (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019).

Networks are built as the reference code builds them (quark0/darts: ``cnn/model.py`` for the
evaluation networks, ``cnn/model_search.py`` for the search supernet); see docs/spaces-darts.md.
Architecture parameters have one row per possible edge of a cell, in the order
node 0 <- {0, 1}, node 1 <- {0, 1, 2}, node 2 <- {0..3}, node 3 <- {0..4} (14 rows), and one column
per op in ``OPS`` order.

This module is the space (genotypes, codecs, the selection rule); the networks are in darts_network.py,
the supernet in darts_supernet.py, the ops in darts_ops.py, the genotype type and text in darts_genotypes.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch

from archsearch.errors import ConfigError, InvalidGenotypeError, ShapeError, shown
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng
from archsearch.spaces.darts_genotypes import (
    CELL_TYPES,
    EDGES_PER_NODE,
    EDGE_ROWS,
    PUBLISHED,
    ROW_OF,
    STEPS,
    DartsGenotype,
    edge_rows,
    keep_edges,
    node_inputs,
    parse_genotype_str,
    published,
    to_genotype_str,
)
from archsearch.spaces.darts_network import NetworkCIFAR, NetworkImageNet, count_parameters
from archsearch.spaces.darts_ops import OPS, SEARCHABLE_OPS
from archsearch.spaces.darts_supernet import DartsSupernet

__all__ = ["DartsSpace", "DartsGenotype", "NetworkCIFAR", "NetworkImageNet", "DartsSupernet", "OPS",
           "EDGE_ROWS", "ROW_OF", "edge_rows", "count_parameters"]


@SPACES.register("darts")
class DartsSpace(SearchSpace):
    """The DARTS CNN space: a normal and a reduction cell, 4 nodes of 2 edges each, 7 ops per edge.

    Genotypes the space generates (``sample``, ``mutate``, ``neighbours``) use the 7 ops other than
    ``none`` and list each node's edges by increasing input; parsed genotypes keep their order and
    may contain ``none``.
    """

    name = "darts"
    ops = OPS
    genotype_type = DartsGenotype
    #: the sizes ``network`` builds when none are given (CIFAR variant): the paper's 36 channels, 20 cells
    network_defaults = {"C": 36, "layers": 20}
    searchable_ops = SEARCHABLE_OPS
    published_genotypes = dict(PUBLISHED)
    #: per cell and node: input a, op a, input b, op b (ENAS' micro arc order, melodyguan/enas
    #: micro_controller.py), 2 x 4 x 4 decisions of at most 7 choices (the ops without ``none``)
    choice_shape = (len(CELL_TYPES) * STEPS * 4, len(SEARCHABLE_OPS))

    @staticmethod
    def named(name: str) -> DartsGenotype:
        """A published genotype: DARTS_V1, DARTS_V2 (= DARTS), PC_DARTS, PDARTS, GDAS."""
        return published(name)

    # -- genotypes ---------------------------------------------------------------------------
    def sample(self, rng: RandomSource = None) -> DartsGenotype:
        """Uniform over the space: per node 2 distinct inputs, each edge one of the 7 non-none ops."""
        rng = as_rng(rng)
        cells = {}
        for cell in CELL_TYPES:
            edges = []
            for node in range(STEPS):
                sources = sorted(int(s) for s in rng.choice(len(node_inputs(node)), size=2, replace=False))
                ops = rng.integers(len(SEARCHABLE_OPS), size=2)
                edges += [(SEARCHABLE_OPS[int(o)], s) for o, s in zip(ops, sources)]
            cells[cell] = tuple(edges)
        return DartsGenotype(cells["normal"], (2, 3, 4, 5), cells["reduce"], (2, 3, 4, 5))

    def neighbours(self, genotype) -> list[DartsGenotype]:
        """Every genotype one change away: the op of one edge (to another non-none op), or the input of
        one edge (to one its node takes that neither edge uses). Order: cell, node, edge, ops then inputs."""
        base = self.parse(genotype).canonical()
        out = []
        for cell in CELL_TYPES:
            edges = base.cell(cell)
            for node in range(STEPS):
                pair = edges[2 * node: 2 * node + 2]
                used = {source for _, source in pair}
                for i in (2 * node, 2 * node + 1):
                    op, source = edges[i]
                    changes = [(new, source) for new in SEARCHABLE_OPS if new != op]
                    changes += [(op, new) for new in node_inputs(node) if new not in used]
                    for change in changes:
                        out.append(_replace_edge(base, cell, i, change))
        return out

    def mutate(self, genotype, rng: RandomSource = None) -> DartsGenotype:
        """One neighbour drawn uniformly."""
        rng = as_rng(rng)
        options = self.neighbours(genotype)
        return options[int(rng.integers(len(options)))]

    def size(self) -> int:
        """prod over nodes of C(inputs, 2) * 7^2, squared for the two cells: about 1.04e18."""
        per_cell = math.prod(math.comb(len(node_inputs(node)), 2) * len(SEARCHABLE_OPS) ** 2 for node in range(STEPS))
        return per_cell ** len(CELL_TYPES)

    def encode(self, genotype) -> torch.Tensor:
        """Flat (2 cells x 14 edges x 8 ops) = 224 one-hot: row (node, input) of a cell holds a 1 in the
        column of its op when the genotype has that edge, zeros otherwise. Rows as the alphas'."""
        genotype = self.parse(genotype)
        onehot = torch.zeros(len(CELL_TYPES), len(EDGE_ROWS), len(OPS))
        for c, cell in enumerate(CELL_TYPES):
            for i, (op, source) in enumerate(genotype.cell(cell)):
                onehot[c, ROW_OF[(i // 2, source)], OPS.index(op)] = 1.0
        return onehot.flatten()

    # -- decisions (controllers) --------------------------------------------------------------
    def choice_sizes(self) -> list[int]:
        """Node k's first input takes one of its k + 2 inputs, its second one of the k + 1 others (a
        DARTS node's inputs are distinct; ENAS' may repeat), each op one of the 7 without ``none``."""
        return [n for _ in CELL_TYPES for node in range(STEPS)
                for n in (node + 2, len(SEARCHABLE_OPS), node + 1, len(SEARCHABLE_OPS))]

    def from_choices(self, choices: Sequence[int]) -> DartsGenotype:
        """Decisions in ``choice_sizes`` order; the second input counts the node's inputs without the first.
        Edges are listed by input (``canonical``), as the space's own genotypes."""
        choices, sizes = list(choices), self.choice_sizes()
        if len(choices) != len(sizes):
            raise InvalidGenotypeError(f"expected {len(sizes)} choices (2 cells x {STEPS} nodes x 4), "
                                       f"got {len(choices)}")
        for k, (c, n) in enumerate(zip(choices, sizes)):
            if isinstance(c, bool) or not isinstance(c, Integral) or not 0 <= c < n:
                raise InvalidGenotypeError(f"choice {k} is {shown(c)}; that decision takes 0..{n - 1}")
        cells, k = {}, 0
        for cell in CELL_TYPES:
            edges = []
            for node in range(STEPS):
                a, op_a, b, op_b = (int(c) for c in choices[k: k + 4])
                others = [s for s in node_inputs(node) if s != a]
                edges += [(SEARCHABLE_OPS[op_a], a), (SEARCHABLE_OPS[op_b], others[b])]
                k += 4
            cells[cell] = tuple(edges)
        concat = tuple(range(2, STEPS + 2))
        return DartsGenotype(cells["normal"], concat, cells["reduce"], concat).canonical()

    def to_choices(self, genotype) -> list[int]:
        """The decisions of a genotype of the space, each node's edges taken in the order listed (a genotype
        with ``none`` or another concat than [2, 3, 4, 5] is not one a controller samples)."""
        genotype = self.parse(genotype)
        out = []
        for cell in CELL_TYPES:
            if tuple(genotype.concat(cell)) != tuple(range(2, STEPS + 2)):
                raise InvalidGenotypeError(f"the {cell} cell concatenates {list(genotype.concat(cell))}; "
                                           "a controller's cells concatenate [2, 3, 4, 5]")
            edges = genotype.cell(cell)
            for node in range(STEPS):
                (op_a, a), (op_b, b) = edges[2 * node: 2 * node + 2]
                for op in (op_a, op_b):
                    if op not in SEARCHABLE_OPS:
                        raise InvalidGenotypeError(f"op '{op}' is not among the controller's ops "
                                                   f"({', '.join(SEARCHABLE_OPS)})")
                others = [s for s in node_inputs(node) if s != a]
                out += [a, SEARCHABLE_OPS.index(op_a), others.index(b), SEARCHABLE_OPS.index(op_b)]
        return out

    def to_string(self, genotype) -> str:
        return to_genotype_str(self.parse(genotype))

    def from_string(self, text: str) -> DartsGenotype:
        """The papers' ``Genotype(...)`` text, or a published name (see ``named``)."""
        return parse_genotype_str(text)

    # -- networks ----------------------------------------------------------------------------
    def network(self, genotype, num_classes: int = 10, C: int | None = None, layers: int | None = None,
                auxiliary: bool = True, drop_path_prob: float = 0.0, variant: str = "cifar",
                in_channels: int = 3) -> NetworkCIFAR | NetworkImageNet:
        """The evaluation network. Defaults are the paper's: CIFAR C=36, 20 cells; ImageNet C=48, 14 cells."""
        genotype = self.parse(genotype)
        if variant == "cifar":
            return NetworkCIFAR(genotype, 36 if C is None else C, num_classes, 20 if layers is None else layers,
                                auxiliary, drop_path_prob, in_channels)
        if variant == "imagenet":
            return NetworkImageNet(genotype, 48 if C is None else C, num_classes, 14 if layers is None else layers,
                                   auxiliary, drop_path_prob, in_channels)
        raise ConfigError(f"unknown DARTS network variant {shown(variant)} (variants: cifar, imagenet)")

    def supernet(self, num_classes: int = 10, relaxation=None, C: int = 16, layers: int = 8,
                 stem_multiplier: int = 3, in_channels: int = 3, partial_channels: int | None = None,
                 edge_normalization: bool = False, op_subsets=None, skip_dropout: float = 0.0,
                 exclude_ops: Sequence[str] = ()) -> DartsSupernet:
        """The search supernet; defaults are the paper's search setting (8 cells, C=16; DARTS Sec. 3.1).
        The reduced-supernet options and ``exclude_ops`` are DartsSupernet's (PC-DARTS, P-DARTS, FairDARTS'
        7 ops). The cell's 4 nodes, all concatenated, are the space's (its genotypes have 4 nodes), not an
        option."""
        return DartsSupernet(C, num_classes, layers, STEPS, STEPS, stem_multiplier, relaxation, in_channels,
                             partial_channels, edge_normalization, op_subsets, skip_dropout, exclude_ops)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {cell: (len(EDGE_ROWS), len(OPS)) for cell in CELL_TYPES}

    inputs_per_node = EDGES_PER_NODE

    def cell_graph(self) -> tuple[list[tuple[int, int]], set[int], set[int]]:
        # nodes 0 and 1 are the two cell inputs; every intermediate node feeds the output's concatenation
        nodes = sorted({node for node, _ in EDGE_ROWS})
        return [(source, node + 2) for node, source in EDGE_ROWS], {0, 1}, {node + 2 for node in nodes}

    def selected_edges(self, genotype) -> dict[str, list[tuple[int, str]]]:
        genotype = self.parse(genotype)
        return {cell: [(ROW_OF[(i // EDGES_PER_NODE, source)], op) for i, (op, source) in enumerate(genotype.cell(cell))]
                for cell in CELL_TYPES}

    def keep_edges(self, genotype, rows) -> DartsGenotype:
        """Edges off ``rows[cell]`` become ``none``, with the nodes this cuts off (darts_genotypes.keep_edges)."""
        return keep_edges(self.parse(genotype), rows)

    def genotype_from_weights(self, weights, exclude: Sequence[str] = ("none",)) -> DartsGenotype:
        """The DARTS rule (quark0/darts ``Network.genotype``): per node, keep the 2 incoming edges whose
        strongest op outside ``exclude`` weighs most, then the argmax op outside ``exclude`` on each.

        ``weights`` are the relaxed op weights (the reference ranks softmax probabilities, not alphas).
        Ties go to the lower edge / op index, as the reference's stable sort and strict comparison do.
        """
        for name in exclude:
            if name not in OPS:
                raise ConfigError(f"cannot exclude unknown op '{name}' (ops: {', '.join(OPS)})")
        keep = [k for k, name in enumerate(OPS) if name not in exclude]
        if not keep:
            raise ConfigError("exclude removes every op; keep at least one")
        cells = {}
        for cell in CELL_TYPES:
            w = np.asarray(torch.as_tensor(weights[cell]).detach().cpu().double())
            if w.shape != (len(EDGE_ROWS), len(OPS)):
                raise ShapeError(f"weights['{cell}'] has shape {w.shape}; the DARTS space needs "
                                 f"{(len(EDGE_ROWS), len(OPS))} (edges x ops)")
            gene = []
            for node in range(STEPS):
                rows = [ROW_OF[(node, source)] for source in node_inputs(node)]
                strength = [w[r, keep].max() for r in rows]
                best_sources = sorted(range(len(rows)), key=lambda s: -strength[s])[:2]
                for source in best_sources:
                    gene.append((OPS[keep[int(np.argmax(w[rows[source], keep]))]], source))
            cells[cell] = tuple(gene)
        concat = tuple(range(2, STEPS + 2))
        return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)

    # -- drawing -----------------------------------------------------------------------------
    def cell_edges(self, genotype) -> dict[str, list[tuple[str, str, str]]]:
        """Per cell: (source, target, op). Nodes: "c_{k-2}", "c_{k-1}" (the two cell inputs), "0".."3"
        (intermediate nodes), and "c_{k}" (the output) reached by edges whose op is "concat"."""
        genotype = self.parse(genotype)
        names = ["c_{k-2}", "c_{k-1}"] + [str(node) for node in range(STEPS)]
        out = {}
        for cell in CELL_TYPES:
            edges = [(names[source], str(i // 2), op) for i, (op, source) in enumerate(genotype.cell(cell))]
            edges += [(names[node], "c_{k}", "concat") for node in genotype.concat(cell)]
            out[cell] = edges
        return out


def _replace_edge(genotype: DartsGenotype, cell: str, index: int, edge: tuple[str, int]) -> DartsGenotype:
    cells = {c: list(genotype.cell(c)) for c in CELL_TYPES}
    cells[cell][index] = edge
    return DartsGenotype(
        tuple(cells["normal"]), genotype.normal_concat, tuple(cells["reduce"]), genotype.reduce_concat
    ).canonical()

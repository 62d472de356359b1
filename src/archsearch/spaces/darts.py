"""The DARTS CNN search space (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019).

Networks are built as the reference code builds them (quark0/darts: ``cnn/model.py`` for the
evaluation networks, ``cnn/model_search.py`` for the search supernet); see docs/spaces-darts.md.
Architecture parameters have one row per possible edge of a cell, in the order
node 0 <- {0, 1}, node 1 <- {0, 1, 2}, node 2 <- {0..3}, node 3 <- {0..4} (14 rows), and one column
per op in ``OPS`` order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from archsearch.checks import integer, number
from archsearch.errors import ConfigError, ShapeError, shown
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng, positive_sizes
from archsearch.spaces.darts_genotypes import (
    CELL_TYPES,
    EDGES_PER_NODE,
    PUBLISHED,
    STEPS,
    DartsGenotype,
    node_inputs,
    parse_genotype_str,
    published,
    to_genotype_str,
)
from archsearch.spaces.darts_ops import (
    OPS,
    SEARCHABLE_OPS,
    FactorizedReduce,
    ReLUConvBN,
    drop_path,
    make_op,
    make_search_op,
)
from archsearch.spaces.partial import build_mixed_op, check_partial_channels, expand_columns, normalize_op_subsets
from archsearch.spaces.supernet import Supernet

__all__ = ["DartsSpace", "DartsGenotype", "NetworkCIFAR", "NetworkImageNet", "DartsSupernet", "OPS",
           "edge_rows", "count_parameters"]


def edge_rows(steps: int = STEPS) -> list[tuple[int, int]]:
    """(intermediate node, input) of each architecture-parameter row, in row order."""
    return [(node, source) for node in range(steps) for source in node_inputs(node)]


EDGE_ROWS = edge_rows()
ROW_OF = {edge: row for row, edge in enumerate(EDGE_ROWS)}


def count_parameters(net: nn.Module, auxiliary: bool = False) -> int:
    """Parameter count; without the auxiliary head by default, as quark0/darts reports model size."""
    return sum(p.numel() for name, p in net.named_parameters() if auxiliary or "auxiliary" not in name)


def _check_channels(C: int) -> int:
    (C,) = positive_sizes(C=C)
    if C < 2 or C % 2:
        raise ConfigError(f"the DARTS networks need an even initial channel count C >= 2, got {C}")
    return C


# ---- the discrete (evaluation) network --------------------------------------------------------
class Cell(nn.Module):
    """A discrete cell: node = op_a(input_a) + op_b(input_b); output = concat of ``concat`` nodes."""

    def __init__(self, genotype: DartsGenotype, cell: str, c_prev_prev: int, c_prev: int, c: int,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = cell == "reduce"
        # The previous-previous state is one resolution up when the previous cell reduced.
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        edges = genotype.cell(cell)
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if self.reduction and source < 2 else 1, affine=True) for op, source in edges
        )
        self.sources = [source for _, source in edges]
        # drop-path leaves identity edges alone (quark0/darts model.py)
        self.droppable = [not isinstance(op, nn.Identity) for op in self.ops]
        self.concat = list(genotype.concat(cell))
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // 2):
            total = None
            for i in (2 * node, 2 * node + 1):
                h = self.ops[i](states[self.sources[i]])
                if self.training and drop_prob > 0.0 and self.droppable[i]:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier of quark0/darts: ReLU, 5x5 avg-pool, 1x1 conv 128, 2x2 conv 768, linear.

    The reference head assumes a feature map that the 5x5 pool turns into 2x2 (8x8 on CIFAR with
    stride 3, 7x7 on ImageNet with stride 2). To run on smaller inputs as well, maps under 5 pixels
    skip the 5x5 pool and any map is then average-pooled to 2x2, which is the identity at the
    reference sizes; the parameters are the reference's in every case.
    """

    def __init__(self, channels: int, num_classes: int, pool_stride: int, bn_after_768: bool):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False)
        self.fit = nn.AdaptiveAvgPool2d(2)
        layers = [
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if bn_after_768:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)  # not in place: x is the cell output the next cells read
        if min(x.shape[-2:]) >= 5:
            x = self.pool(x)
        return self.classifier(self.features(self.fit(x)).flatten(1))


class _DartsNetwork(nn.Module):
    """Cells, auxiliary head after cell 2*layers//3, global pooling and classifier."""

    def __init__(self, genotype: DartsGenotype, C: int, num_classes: int, layers: int, auxiliary: bool,
                 drop_path_prob: float, in_channels: int, c_stem: int, reduction_prev: bool,
                 aux_pool_stride: int, aux_bn: bool):
        super().__init__()
        C = _check_channels(C)
        layers, num_classes, in_channels = positive_sizes(layers=layers, num_classes=num_classes,
                                                          in_channels=in_channels)
        drop_path_prob = number(drop_path_prob, "drop_path_prob", minimum=0.0)
        if drop_path_prob >= 1.0:
            raise ConfigError(f"drop_path_prob must be below 1 (it drops an edge with that probability), got {drop_path_prob}")
        self.genotype = genotype
        self.in_channels = in_channels
        self.layers = layers
        #: probability of dropping each non-identity edge in training; schedules set it per epoch
        self.drop_path_prob = drop_path_prob
        self.aux_index = 2 * layers // 3
        c_prev_prev, c_prev, c_curr = c_stem, c_stem, C
        cells, c_aux = [], None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, "reduce" if reduction else "normal", c_prev_prev, c_prev, c_curr, reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_index:
                c_aux = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, aux_pool_stride, aux_bn) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        """Logits; in training mode with an auxiliary head, ``(logits, aux_logits)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                "set in_channels when building the network"
            )
        s0, s1 = self.stems(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits


class NetworkCIFAR(_DartsNetwork):
    """quark0/darts' NetworkCIFAR: a 3x3 stem of 3C channels, reductions at layers//3 and 2*layers//3."""

    def __init__(self, genotype: DartsGenotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                 auxiliary: bool = True, drop_path_prob: float = 0.0, in_channels: int = 3):
        stem_multiplier = 3  # quark0/darts model.py
        c_stem = stem_multiplier * C
        super().__init__(genotype, C, num_classes, layers, auxiliary, drop_path_prob, in_channels, c_stem,
                         reduction_prev=False, aux_pool_stride=3, aux_bn=True)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))

    def stems(self, x):
        s = self.stem(x)
        return s, s


class NetworkImageNet(_DartsNetwork):
    """quark0/darts' NetworkImageNet: two stride-2 stems (224 -> 56 -> 28) before the cells.

    Global pooling is adaptive (the reference's 7x7 average pool on 224-pixel inputs). The
    auxiliary head has no BatchNorm after its 768-channel conv: the reference omits it, and the
    published ImageNet results were obtained without it.
    """

    def __init__(self, genotype: DartsGenotype, C: int = 48, num_classes: int = 1000, layers: int = 14,
                 auxiliary: bool = True, drop_path_prob: float = 0.0, in_channels: int = 3):
        super().__init__(genotype, C, num_classes, layers, auxiliary, drop_path_prob, in_channels, C,
                         reduction_prev=True, aux_pool_stride=2, aux_bn=False)
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),  # not in place: stem0's output is also the first cell's s0
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )

    def stems(self, x):
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


# ---- the search supernet ----------------------------------------------------------------------
class SearchCell(nn.Module):
    """A supernet cell: a MixedOp over all 8 ops on each of the 14 possible edges (or over ``op_subsets[row]``,
    with partial channels and skip dropout: see spaces/partial.py)."""

    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool, partial_channels: int | None = None, op_subsets=None,
                 skip_dropout: float = 0.0):
        super().__init__()
        self.reduction = reduction
        self.steps, self.multiplier = steps, multiplier
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            build_mixed_op(OPS if op_subsets is None else op_subsets[row],
                           lambda op, width, stride=2 if reduction and source < 2 else 1: make_search_op(op, width, stride),
                           c, partial_channels, skip_dropout)
            for row, (_, source) in enumerate(edge_rows(steps))
        )

    def forward(self, s0, s1, weights: torch.Tensor, hard: list[int] | None = None,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        row = 0
        for _ in range(self.steps):
            total = None
            for h in states:  # node = sum over every earlier state of its mixed edge
                term = self.edges[row](h, weights[row], None if hard is None else hard[row])
                if edge_weights is not None:  # PC-DARTS: node = sum_j softmax(beta)_j * edge_j
                    term = term * edge_weights[row]
                total = term if total is None else total + term
                row += 1
            states.append(total)
        return torch.cat(states[-self.multiplier:], dim=1)


class DartsSupernet(Supernet):
    """quark0/darts' search Network: ``alphas["normal"]`` shared by all normal cells, ``alphas["reduce"]``
    by both reduction cells, each of shape (14, 8).

    Options of the reduced supernets (spaces/partial.py): ``partial_channels=K`` and ``edge_normalization``
    (PC-DARTS; betas of shape (14,)), ``op_subsets`` ({cell: one list of op names per edge}: alpha columns
    for those ops only, in OPS order; P-DARTS) and ``skip_dropout`` (P-DARTS' dropout after identity skips).
    """

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, steps: int = STEPS,
                 multiplier: int = 4, stem_multiplier: int = 3, relaxation=None, in_channels: int = 3,
                 partial_channels: int | None = None, edge_normalization: bool = False, op_subsets=None,
                 skip_dropout: float = 0.0):
        C = _check_channels(C)
        layers, steps, stem_multiplier, num_classes, in_channels = positive_sizes(
            layers=layers, steps=steps, stem_multiplier=stem_multiplier, num_classes=num_classes, in_channels=in_channels)
        multiplier = integer(multiplier, "multiplier (nodes concatenated)", minimum=1, maximum=steps)
        if not 0.0 <= skip_dropout < 1.0:
            raise ConfigError(f"skip_dropout must lie in [0, 1), got {skip_dropout}")
        rows = len(edge_rows(steps))
        if op_subsets is not None:
            op_subsets = normalize_op_subsets(op_subsets, OPS, CELL_TYPES, rows)
        self.op_subsets = op_subsets
        columns = {cell: len(OPS) if op_subsets is None else len(op_subsets[cell][0]) for cell in CELL_TYPES}
        super().__init__({cell: (rows, columns[cell]) for cell in CELL_TYPES}, OPS, relaxation)
        self.in_channels = in_channels
        self.steps, self.multiplier = steps, multiplier
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        cells, reduction_prev = [], False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            check_partial_channels([c_curr], partial_channels)
            cell_ops = None if op_subsets is None else op_subsets["reduce" if reduction else "normal"]
            cells.append(SearchCell(steps, multiplier, c_prev_prev, c_prev, c_curr, reduction, reduction_prev,
                                    partial_channels, cell_ops, skip_dropout))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, multiplier * c_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        if edge_normalization:
            self.enable_edge_normalization([len(node_inputs(node)) for node in range(steps)])

    def selection_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Op weights over all 8 ops (0 for ops an edge does not hold), scaled by the edge weights."""
        if self.op_subsets is not None:
            weights = {name: expand_columns(w, self.op_subsets[name], OPS) for name, w in weights.items()}
        return super().selection_weights(weights)

    def cell_arch_name(self, cell: nn.Module) -> str:
        return "reduce" if cell.reduction else "normal"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        weights = self.op_weights()
        hard = self.hard_indices(weights)
        edges = self.edge_weights()
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[kind], hard[kind], edges[kind])
        return self.classifier(self.global_pooling(s1).flatten(1))


# ---- the space --------------------------------------------------------------------------------
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
                 edge_normalization: bool = False, op_subsets=None, skip_dropout: float = 0.0) -> DartsSupernet:
        """The search supernet; defaults are the paper's search setting (8 cells, C=16; DARTS Sec. 3.1).
        The reduced-supernet options are DartsSupernet's (PC-DARTS, P-DARTS). The cell's 4 nodes, all
        concatenated, are the space's (its genotypes have 4 nodes), not an option."""
        return DartsSupernet(C, num_classes, layers, STEPS, STEPS, stem_multiplier, relaxation, in_channels,
                             partial_channels, edge_normalization, op_subsets, skip_dropout)

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

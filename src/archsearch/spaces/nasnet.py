"""The NASNet search space (Zoph, Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable
Image Recognition", CVPR 2018, Sec. 3): a normal and a reduction cell of B blocks; each block takes two
states, applies an op to each and combines them.

The space's options choose the paper's space or one of its descendants': ``ops`` (the paper's 13 by
default; ``nasnet_ops.PNASNET_OPS`` or ``ENAS_OPS`` for those spaces), ``combines`` (``add`` and ``concat``,
NASNet's step 5; PNASNet, AmoebaNet and ENAS add only) and ``blocks`` (B = 5, as all four papers).
Genotypes and their text are in nasnet_genotypes.py, the network in nasnet_network.py, the ops in
nasnet_ops.py; see docs/spaces-nasnet.md. A space that only adds has ENAS' supernet
(nasnet_supernet.py), driven by ENAS' controller through ``choice_shape`` / ``from_choices``; ``nasnet-enas``
is ENAS' micro space (its five ops, add). The others are searched by black-box strategies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import torch

from archsearch.checks import integer
from archsearch.errors import ConfigError, InvalidGenotypeError, ShapeError, shown
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng
from archsearch.spaces.nasnet_genotypes import (
    CELL_TYPES, MAX_BLOCKS, PUBLISHED, PUBLISHED_SETTINGS, NasnetGenotype, derived_concat, parse_genotype_str,
    published, published_name, to_genotype_str,
)
from archsearch.spaces.nasnet_network import NASNetCIFAR
from archsearch.spaces.nasnet_ops import COMBINES, ENAS_OPS, OPS
from archsearch.spaces.nasnet_supernet import EnasMicroSupernet, row_of, slot_rows


def _subset(name: str, given, universe: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(given, str) or not isinstance(given, Sequence):
        raise ConfigError(f"the nasnet space's {name} must be a list of names from {', '.join(universe)}, "
                          f"got {shown(given)}")
    given = tuple(given)
    unknown = [g for g in given if g not in universe]
    if not given or unknown or len(set(given)) != len(given):
        raise ConfigError(f"the nasnet space's {name} {shown(list(given))} must be distinct names from "
                          f"{', '.join(universe)}")
    return given


@SPACES.register("nasnet")
class NasnetSpace(SearchSpace):
    """The NASNet space: normal and reduction cells of B=5 blocks, 13 ops, add or concat (Zoph et al. 2018)."""

    name = "nasnet"
    genotype_type = NasnetGenotype
    #: the NASNet-A CIFAR-10 network ("6 @ 768"); a published genotype is built with its own paper's sizes
    network_defaults = {"C": 32, "N": 6}
    published_genotypes = dict(PUBLISHED)
    #: the default space's (2 cells x 5 blocks x 5 decisions, 13 ops); an instance sets its own
    choice_shape = (50, 13)

    def __init__(self, ops: Sequence[str] = OPS, combines: Sequence[str] = COMBINES, blocks: int = 5):
        self.ops = _subset("ops", ops, OPS)
        self.combines = _subset("combines", combines, COMBINES)
        self.blocks = integer(blocks, "the nasnet space's blocks", minimum=1, maximum=MAX_BLOCKS)
        # per cell and block: input a, op a, input b, op b (ENAS' arc order, micro_controller.py), then the
        # combination where the space offers more than one
        self.per_block = 4 + (len(self.combines) > 1)
        decisions = len(CELL_TYPES) * self.blocks * self.per_block
        self.choice_shape = (decisions, max(self.blocks + 1, len(self.ops), len(self.combines)))

    @staticmethod
    def named(name: str) -> NasnetGenotype:
        """A published genotype: NASNET_A, AMOEBANET_A, PNASNET_5, ENAS."""
        return published(name)

    # -- genotypes ---------------------------------------------------------------------------
    def _in_space(self, genotype) -> NasnetGenotype:
        """The genotype, refused where it has ops, combinations or a block count this space does not offer."""
        genotype = self.parse(genotype)
        if genotype.blocks != self.blocks:
            raise InvalidGenotypeError(f"the genotype has {genotype.blocks} blocks per cell; this space has "
                                       f"{self.blocks}")
        for cell in CELL_TYPES:
            for op, _ in genotype.cell(cell):
                if op not in self.ops:
                    raise InvalidGenotypeError(f"op '{op}' of the {cell} cell is not among this space's ops "
                                               f"({', '.join(self.ops)})")
            for c in genotype.combine(cell):
                if c not in self.combines:
                    raise InvalidGenotypeError(f"combination '{c}' is not among this space's ({', '.join(self.combines)})")
        return genotype

    def _build(self, cells: dict) -> NasnetGenotype:
        """A genotype from per-cell (edges, combine), with NASNet's output rule for ``concat``."""
        fields = {}
        for cell, (edges, combine) in cells.items():
            fields.update({cell: tuple(edges), f"{cell}_concat": derived_concat(tuple(edges)),
                           f"{cell}_combine": tuple(combine)})
        return NasnetGenotype(**fields)

    def sample(self, rng: RandomSource = None) -> NasnetGenotype:
        """Each decision uniform and independent, as NASNet's controller samples them: two inputs from the
        states before the block (with replacement), an op for each, a combination; ``concat`` is the
        unused blocks' outputs."""
        rng = as_rng(rng)
        cells = {}
        for cell in CELL_TYPES:
            edges, combine = [], []
            for block in range(self.blocks):
                for _ in range(2):
                    edges.append((self.ops[int(rng.integers(len(self.ops)))], int(rng.integers(block + 2))))
                combine.append(self.combines[int(rng.integers(len(self.combines)))])
            cells[cell] = (edges, combine)
        return self._build(cells)

    def neighbours(self, genotype) -> list[NasnetGenotype]:
        """Every genotype one decision away (AmoebaNet's op and hidden-state mutations, Real et al. Fig. 3,
        and a block's combination): order cell, block, edge ops, edge inputs, combination. An input change
        re-derives ``concat`` by the output rule; other changes keep it. Duplicates appear once."""
        base = self._in_space(genotype)
        out, seen = [], {base}
        for cell in CELL_TYPES:
            edges, combine = list(base.cell(cell)), list(base.combine(cell))
            for block in range(self.blocks):
                changes = []
                for i in (2 * block, 2 * block + 1):
                    op, source = edges[i]
                    changes += [(i, (new, source), None) for new in self.ops if new != op]
                for i in (2 * block, 2 * block + 1):
                    op, source = edges[i]
                    changes += [(i, (op, new), None) for new in range(block + 2) if new != source]
                changes += [(None, None, c) for c in self.combines if c != combine[block]]
                for i, edge, new_combine in changes:
                    new_edges, new_combine_list = list(edges), list(combine)
                    if i is not None:
                        new_edges[i] = edge
                    else:
                        new_combine_list[block] = new_combine
                    rule = edge is not None and edge[1] != edges[i][1]
                    candidate = _replace_cell(base, cell, new_edges, new_combine_list, rule)
                    if candidate not in seen:
                        seen.add(candidate)
                        out.append(candidate)
        return out

    def mutate(self, genotype, rng: RandomSource = None) -> NasnetGenotype:
        """One neighbour drawn uniformly."""
        options = self.neighbours(genotype)
        return options[int(as_rng(rng).integers(len(options)))]

    def size(self) -> int:
        """Distinct genotypes (``concat`` derived): per block, m = (b + 2) * ops choices per edge; an ``add``
        block is a multiset of two edges, m(m + 1)/2, a ``concat`` block an ordered pair, m^2; the product over
        blocks, squared for the two cells."""
        def block(b: int) -> int:
            m = (b + 2) * len(self.ops)
            return ("add" in self.combines) * m * (m + 1) // 2 + ("concat" in self.combines) * m * m

        return math.prod(block(b) for b in range(self.blocks)) ** len(CELL_TYPES)

    def encode(self, genotype) -> torch.Tensor:
        """Per cell, block and edge a one-hot of its input (B + 1 slots) and of its op; per block a one-hot of
        its combination (where the space has two); a 0/1 mask of the concatenated states (B + 2)."""
        genotype = self._in_space(genotype)
        parts = []
        for cell in CELL_TYPES:
            edges, combine = genotype.cell(cell), genotype.combine(cell)
            for block in range(self.blocks):
                for op, source in edges[2 * block: 2 * block + 2]:
                    parts += [_onehot(source, self.blocks + 1), _onehot(self.ops.index(op), len(self.ops))]
                if len(self.combines) > 1:
                    parts.append(_onehot(self.combines.index(combine[block]), len(self.combines)))
            mask = torch.zeros(self.blocks + 2)
            mask[list(genotype.concat(cell))] = 1.0
            parts.append(mask)
        return torch.cat(parts)

    def choice_sizes(self) -> list[int]:
        """How many of the ``choice_shape[1]`` choices each decision has (the first that many are valid):
        block b's inputs b + 2, its ops len(ops), its combination len(combines)."""
        sizes = []
        for _ in CELL_TYPES:
            for block in range(self.blocks):
                sizes += [block + 2, len(self.ops), block + 2, len(self.ops)]
                sizes += [len(self.combines)] if self.per_block == 5 else []
        return sizes

    def from_choices(self, choices: Sequence[int]) -> NasnetGenotype:
        """Decisions in ``choice_sizes`` order; ``concat`` by NASNet's output rule."""
        choices = list(choices)
        sizes = self.choice_sizes()
        if len(choices) != len(sizes):
            raise InvalidGenotypeError(f"expected {len(sizes)} choices (2 cells x {self.blocks} blocks x "
                                       f"{self.per_block}), got {len(choices)}")
        for k, (c, n) in enumerate(zip(choices, sizes)):
            if isinstance(c, bool) or not isinstance(c, Integral) or not 0 <= c < n:
                raise InvalidGenotypeError(f"choice {k} is {shown(c)}; that decision takes 0..{n - 1}")
        choices, cells, k = [int(c) for c in choices], {}, 0
        for cell in CELL_TYPES:
            edges, combine = [], []
            for _ in range(self.blocks):
                a, op_a, b, op_b = choices[k: k + 4]
                edges += [(self.ops[op_a], a), (self.ops[op_b], b)]
                combine.append(self.combines[choices[k + 4]] if self.per_block == 5 else self.combines[0])
                k += self.per_block
            cells[cell] = (edges, combine)
        return self._build(cells)

    def to_choices(self, genotype) -> list[int]:
        """The decisions of a genotype (its ``concat`` is not one: ``from_choices`` derives it)."""
        genotype = self._in_space(genotype)
        out = []
        for cell in CELL_TYPES:
            edges, combine = genotype.cell(cell), genotype.combine(cell)
            for block in range(self.blocks):
                (op_a, a), (op_b, b) = edges[2 * block: 2 * block + 2]
                out += [a, self.ops.index(op_a), b, self.ops.index(op_b)]
                out += [self.combines.index(combine[block])] if self.per_block == 5 else []
        return out

    def to_string(self, genotype) -> str:
        return to_genotype_str(self.parse(genotype))

    def from_string(self, text: str) -> NasnetGenotype:
        """quark0/darts' ``Genotype(...)`` text (with ``*_combine`` where a block concatenates) or a published
        name (see ``named``)."""
        return parse_genotype_str(text)

    # -- networks ----------------------------------------------------------------------------
    def network(self, genotype, num_classes: int = 10, C: int | None = None, N: int | None = None,
                auxiliary: bool = True, drop_path_prob: float = 0.0, in_channels: int = 3,
                skeleton: str | None = None) -> NASNetCIFAR:
        """The CIFAR network. Sizes left out are the paper's of a published genotype (``PUBLISHED_SETTINGS``:
        NASNet-A F=32 N=6, AmoebaNet-A F=36 N=6, PNASNet-5 F=48 N=3, ENAS F=36 N=5 on its own skeleton),
        else NASNet-A's."""
        genotype = self.parse(genotype)
        settings = PUBLISHED_SETTINGS[published_name(genotype) or "NASNET_A"]
        return NASNetCIFAR(genotype, settings["C"] if C is None else C, settings["N"] if N is None else N,
                           num_classes, auxiliary, drop_path_prob, in_channels,
                           settings["skeleton"] if skeleton is None else skeleton)

    def _check_supernet(self) -> None:
        if tuple(self.combines) != ("add",):
            raise ConfigError(f"the {self.name} space with combines {', '.join(self.combines)} has no supernet: "
                              "ENAS' supernet adds (combines=[add]; the nasnet-enas space is ENAS' micro space)")

    def supernet(self, num_classes: int = 10, relaxation=None, C: int = 20, N: int = 2, in_channels: int = 3,
                 dropout: float = 0.1) -> EnasMicroSupernet:
        """ENAS' micro search network (nasnet_supernet.py); defaults: melodyguan/enas
        scripts/cifar10_micro_search.sh, --child_out_filters=20, --child_num_layers=6 (N = 6 // 3 = 2),
        --child_keep_prob=0.90. Spaces that add only (combines=[add])."""
        self._check_supernet()
        return EnasMicroSupernet(self.ops, self.blocks, C, N, num_classes, relaxation, in_channels, dropout)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        """The supernet's alphas (a row per block, slot and input; ``none`` then the ops), where it has one."""
        if tuple(self.combines) != ("add",):
            return {}
        return {cell: (len(slot_rows(self.blocks)), 1 + len(self.ops)) for cell in CELL_TYPES}

    def selected_edges(self, genotype) -> dict[str, list[tuple[int, str]]] | None:
        """Edge i of a cell (block i // 2, slot i % 2) on the row of its input."""
        genotype = self._in_space(genotype)
        return {cell: [(row_of(i // 2, i % 2, source), op) for i, (op, source) in enumerate(genotype.cell(cell))]
                for cell in CELL_TYPES}

    def genotype_from_weights(self, weights, exclude: Sequence[str] = ("none",)) -> NasnetGenotype:
        """Per block and slot the (input, op) of largest weight outside ``exclude`` among the slot's rows
        (ties: the lower input, then the lower op); ``concat`` by the output rule."""
        self._check_supernet()
        names = ("none", *self.ops)
        keep = [k for k, op in enumerate(names) if op not in exclude]
        rows, cells = slot_rows(self.blocks), {}
        for cell in CELL_TYPES:
            w = torch.as_tensor(weights[cell]).detach().cpu().double()
            if tuple(w.shape) != (len(rows), len(names)):
                raise ShapeError(f"weights['{cell}'] has shape {tuple(w.shape)}; this space's supernet has "
                                 f"{(len(rows), len(names))}")
            edges = []
            for b in range(self.blocks):
                for slot in (0, 1):
                    best = max(((float(w[row_of(b, slot, j), k]), -j, -k) for j in range(b + 2) for k in keep))
                    edges.append((names[-best[2]], -best[1]))
            cells[cell] = (edges, ["add"] * self.blocks)
        return self._build(cells)

    # -- drawing -----------------------------------------------------------------------------
    def cell_edges(self, genotype) -> dict[str, list[tuple[str, str, str]]]:
        """Per cell: (source, target, op). Nodes "h_{i-2}", "h_{i-1}", "0".."B-1" (blocks; a block that
        concatenates is named "k (concat)") and "h_{i}" (the output) reached by "concat" edges."""
        genotype = self.parse(genotype)
        out = {}
        for cell in CELL_TYPES:
            combine = genotype.combine(cell)
            names = ["h_{i-2}", "h_{i-1}"] + [f"{b} (concat)" if c == "concat" else str(b)
                                              for b, c in enumerate(combine)]
            edges = [(names[source], names[2 + i // 2], op) for i, (op, source) in enumerate(genotype.cell(cell))]
            edges += [(names[s], "h_{i}", "concat") for s in genotype.concat(cell)]
            out[cell] = edges
        return out


def _onehot(index: int, length: int) -> torch.Tensor:
    v = torch.zeros(length)
    v[index] = 1.0
    return v


def _replace_cell(genotype: NasnetGenotype, cell: str, edges: list, combine: list, rule: bool) -> NasnetGenotype:
    fields = {c: genotype.cell(c) for c in CELL_TYPES}
    fields.update({f"{c}_concat": genotype.concat(c) for c in CELL_TYPES})
    fields.update({f"{c}_combine": genotype.combine(c) for c in CELL_TYPES})
    fields[cell], fields[f"{cell}_combine"] = tuple(edges), tuple(combine)
    if rule:
        fields[f"{cell}_concat"] = derived_concat(tuple(edges))
    return NasnetGenotype(**fields)


@SPACES.register("nasnet-enas")
class NasnetEnasSpace(NasnetSpace):
    """ENAS' micro space (Pham et al. 2018, Sec. 2.3): the NASNet space with ENAS' five ops, in its op-id order
    (micro_child.py ``_enas_cell``: sep 3x3, sep 5x5, avg 3x3, max 3x3, identity), blocks that add, B = 5."""

    name = "nasnet-enas"
    choice_shape = (40, 6)

    def __init__(self, ops: Sequence[str] = ENAS_OPS, combines: Sequence[str] = ("add",), blocks: int = 5):
        super().__init__(ops, combines, blocks)

"""ENAS' micro search network as a supernet on the NASNet space (Pham et al., ICML 2018, Sec. 2.3), as its
search child computes it: melodyguan/enas ``src/cifar10/micro_child.py`` (4bcfd73), the branches taken
when ``fixed_arc`` is None: ``_model``, ``_maybe_calibrate_size``, ``_enas_layer``, ``_enas_cell``,
``_enas_conv``.

Alpha rows. Every (block b, slot x|y, input j in 0..b+1) of a cell is one row, a ``MixedOp`` over ``none``
and the space's ops with modules of its own: ENAS keeps separate weights per block, slot and input
(``_enas_conv``: ``w_depthwise[prev_cell]``, ``w_pointwise[prev_cell]`` and the BN's ``offset`` / ``scale``
indexed by the input, inside the block's "x" or "y" scope). A slot's output is the sum of its rows; a cell
chosen by a controller is one-hot on one row per slot, ``none`` on the others, which are not computed.
2 * sum_b (b + 2) = 40 rows per cell for B = 5.

The network (``_model``): a 3x3 stem of 3F channels and BN; 3N + 2 cells, a reduction at cells N and
2N + 1 (``pool_layers``; ``--child_num_layers=6`` is N = 2); a reduction doubles F and first brings the
last output down by a factorized reduction without ReLU, the reduction cell itself running at stride 1
with the reduction arc (``_model``: ``layers = [layers[-1], x]``, then ``_enas_layer``). In a cell the
inputs are brought to F (``_maybe_calibrate_size``: h_{i-2} by ReLU and a factorized reduction where it is
one resolution up, ReLU-1x1-BN where its width differs; h_{i-1} by ReLU-1x1-BN where its width differs),
each block adds its two slots, and the states no block reads pass ReLU, one 1x1 conv whose weights are
kept per state (``final_conv``: ``w[num_cells + 2, F * F]`` gathered) and BN, so every cell outputs F
channels. Then ReLU, global pooling, dropout (``--child_keep_prob=0.90``) and a linear layer without bias.

Where this differs from the reference, and why:

- The output takes the block outputs no block reads (the space's rule, ``derived_concat``), so that the
  genotype states the network; ``_enas_layer`` also takes a cell *input* no block reads.
- Every BN normalises by the batch's statistics, in eval mode too: the search child forces
  ``is_training = True`` (``_model``). Dropout follows PyTorch's mode; the reference's reward forward
  drops too.
- No auxiliary head (``--child_use_aux_heads``): the search loop trains a supernet on its logits alone.
- A soft relaxation (none is published for this space) weighs every row of a slot; the output then takes
  every block, as DARTS concatenates all its nodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.checks import number
from archsearch.errors import ConfigError
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.darts_ops import FactorizedReduce
from archsearch.spaces.nasnet_genotypes import CELL_TYPES
from archsearch.spaces.nasnet_ops import ReLUConvBN, bn, make_op
from archsearch.spaces.ops import Zero, check_images
from archsearch.spaces.supernet import MixedOp, Supernet


def slot_rows(blocks: int) -> list[tuple[int, int, int]]:
    """(block, slot, input) of each alpha row of a cell, in row order: block by block, slot x then y,
    inputs 0..block + 1."""
    return [(b, slot, j) for b in range(blocks) for slot in (0, 1) for j in range(b + 2)]


def row_of(block: int, slot: int, source: int) -> int:
    """The alpha row of (block, slot, input): rows of blocks before it, 2 (b + 2) each, then the slot's."""
    return sum(2 * (b + 2) for b in range(block)) + slot * (block + 2) + source


def batch_statistics(module: nn.Module) -> nn.Module:
    """Every BN of ``module`` normalised by the batch's statistics, in training and eval mode alike
    (ENAS' search child: ``is_training`` forced True)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return module


def _reduce(c_in: int, c_out: int, relu: bool) -> FactorizedReduce:
    reduce = FactorizedReduce(c_in, c_out)  # _factorized_reduction at stride 2
    if not relu:
        reduce.relu = nn.Identity()
    return reduce


class SearchCell(nn.Module):
    """``_enas_layer``: two inputs brought to F channels, B blocks of two summed slots, the unread states
    through ReLU, a per-state 1x1 conv and BN."""

    def __init__(self, op_names: Sequence[str], blocks: int, c_prev_prev: int, c_prev: int, c: int,
                 s0_larger: bool, reduction: bool):
        super().__init__()
        self.reduction, self.blocks, self.c = reduction, blocks, c
        if s0_larger:  # _maybe_calibrate_size, pool_x
            self.preprocess0 = _reduce(c_prev_prev, c, relu=True)
        elif c_prev_prev != c:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c)
        else:
            self.preprocess0 = nn.Identity()
        self.preprocess1 = ReLUConvBN(c_prev, c) if c_prev != c else nn.Identity()  # pool_y
        self.rows = slot_rows(blocks)
        self.edges = nn.ModuleList(
            MixedOp(op_names, [Zero() if op == "none" else make_op(op, c, c, 1) for op in op_names])
            for _ in self.rows)
        # final_conv: one F x F 1x1 kernel per state, those of the states concatenated gathered
        self.final = nn.Parameter(torch.empty(blocks + 2, c, c))
        for w in self.final:  # a Conv2d's default initialisation, fan-in F
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.final_bn = bn(c)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                hard: list[int] | None = None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        # a one-hot path without gradient (a controller's cell, a scored candidate) computes one row per
        # slot: the rows on ``none`` are exactly zero and are left out
        skip = hard is not None and not weights.requires_grad
        read, row = set(), 0
        for b in range(self.blocks):
            slots = []
            for _ in (0, 1):
                total = None
                for j in range(b + 2):
                    edge = self.edges[row]
                    if not (skip and edge.op_names[hard[row]] == "none"):
                        term = edge(states[j], weights[row], None if hard is None else hard[row])
                        total = term if total is None else total + term
                        read.add(j)
                    row += 1
                slots.append(torch.zeros_like(states[1]) if total is None else total)
            states.append(slots[0] + slots[1])  # ENAS only adds
        concat = [s for s in range(2, self.blocks + 2) if s not in read] if skip else []
        concat = concat or list(range(2, self.blocks + 2))
        out = torch.relu(torch.cat([states[s] for s in concat], dim=1))
        kernel = torch.cat([self.final[s] for s in concat], dim=1)  # (F, F * len(concat))
        return self.final_bn(F.conv2d(out, kernel[:, :, None, None]))


class EnasMicroSupernet(Supernet):
    """ENAS' micro search child: ``alphas["normal"]`` shared by the normal cells, ``alphas["reduce"]`` by the
    two reduction cells, each (2 sum_b (b + 2), 1 + len(ops)) with ``none`` in column 0."""

    def __init__(self, ops: Sequence[str], blocks: int = 5, C: int = 20, N: int = 2, num_classes: int = 10,
                 relaxation=None, in_channels: int = 3, dropout: float = 0.1, stem_multiplier: int = 3):
        C, N, blocks, num_classes, in_channels, stem_multiplier = positive_sizes(
            C=C, N=N, blocks=blocks, num_classes=num_classes, in_channels=in_channels,
            stem_multiplier=stem_multiplier)
        if C % 2:
            raise ConfigError(f"the ENAS supernet needs an even filter count C (factorized reductions split it "
                              f"in two halves), got {C}")
        self.dropout_p = number(dropout, "dropout", minimum=0.0)
        if self.dropout_p >= 1.0:
            raise ConfigError(f"dropout must be below 1, got {dropout}")
        op_names = ("none", *ops)
        rows = len(slot_rows(blocks))
        super().__init__({cell: (rows, len(op_names)) for cell in CELL_TYPES}, op_names, relaxation)
        self.in_channels, self.blocks = in_channels, blocks
        c_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), bn(c_stem))
        self.pool_layers = (N, 2 * N + 1)  # micro_child.py: pool_distance = num_layers // 3
        cells, self.reductions = [], nn.ModuleDict()
        c_prev_prev, c_prev, c, s0_larger = c_stem, c_stem, C, False
        for i in range(3 * N + 2):
            reduction = i in self.pool_layers
            if reduction:  # _model: out_filters *= 2, the last output reduced, then the reduction arc's cell
                c *= 2
                self.reductions[str(i)] = _reduce(c_prev, c, relu=False)
                c_prev_prev, c_prev, s0_larger = c_prev, c, True
            cells.append(SearchCell(op_names, blocks, c_prev_prev, c_prev, c, s0_larger, reduction))
            c_prev_prev, c_prev, s0_larger = c_prev, c, False
        self.cells = nn.ModuleList(cells)
        self.dropout = nn.Dropout(self.dropout_p)
        self.classifier = nn.Linear(c_prev, num_classes, bias=False)
        batch_statistics(self)

    def cell_arch_name(self, cell: nn.Module) -> str:
        return "reduce" if cell.reduction else "normal"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels)
        weights = self.op_weights()
        hard = self.hard_indices(weights)
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            kind = "reduce" if cell.reduction else "normal"
            if cell.reduction:
                s0, s1 = s1, self.reductions[str(i)](s1)
            s0, s1 = s1, cell(s0, s1, weights[kind], hard[kind])
        return self.classifier(self.dropout(torch.relu(s1).mean((2, 3))))


__all__ = ["EnasMicroSupernet", "SearchCell", "batch_statistics", "row_of", "slot_rows"]

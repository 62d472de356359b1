"""The DARTS search supernet, as quark0/darts' ``cnn/model_search.py`` builds it, with the options of the
reduced supernets (spaces/partial.py): partial channels and edge normalisation (PC-DARTS), per-edge op
subsets and skip dropout (P-DARTS).
"""

from __future__ import annotations

import contextlib

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from archsearch.checks import integer
from archsearch.errors import ConfigError
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.darts_fused import can_fuse, fused_cell
from archsearch.spaces.darts_genotypes import CELL_TYPES, STEPS, edge_rows, node_inputs
from archsearch.spaces.darts_ops import OPS, FactorizedReduce, check_channels, cell_plan, make_search_op
from archsearch.spaces.ops import ReLUConvBN, check_images
from archsearch.spaces.partial import (
    build_mixed_op,
    check_partial_channels,
    expand_columns,
    kept_ops,
    normalize_op_subsets,
)
from archsearch.spaces.supernet import Supernet


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
        self.fused = True  # the supernet's path (Supernet.set_path): see darts_fused.py
        self.recompute = True  # the fused convs' inner tensors recomputed in backward (first order only)

    def forward(self, s0, s1, weights: torch.Tensor, hard: list[int] | None = None,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        # a one-hot path without gradient (ENAS, a scored candidate) runs its chosen edges alone, per op
        gradient_free_path = hard is not None and not weights.requires_grad
        if self.fused and can_fuse(self) and not gradient_free_path:
            return fused_cell(self, s0, s1, weights, hard, edge_weights)
        return self.forward_per_op(s0, s1, weights, hard, edge_weights)

    def forward_per_op(self, s0, s1, weights: torch.Tensor, hard: list[int] | None = None,
                       edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """The reference path: every op of every edge computed by its own module."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        # a one-hot path without gradient (ENAS' controller, a scored candidate) leaves out the edges whose
        # op is ``none``: their term is exactly zero (with gradient, GDAS' straight-through terms are kept)
        skip = hard is not None and not weights.requires_grad
        row = 0
        for _ in range(self.steps):
            total = None
            for i, h in enumerate(states):  # node = sum over every earlier state of its mixed edge
                edge = self.edges[row]
                if skip and edge.op_names[hard[row]] == "none" and (total is not None or i < len(states) - 1):
                    row += 1
                    continue
                term = edge(h, weights[row], None if hard is None else hard[row])
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

    ``exclude_ops``: ops no edge holds, taken out of every edge's op list (of ``op_subsets`` where given) so
    that alpha has no column for them. FairDARTS excludes ``none``: its reference op set has 7 ops
    (xiaomi-automl/FairDARTS ``fairdarts/genotypes.py:8-16`` PRIMITIVES, one MixedOp over them at
    ``model_search.py:14``, alphas of shape (14, 7) at ``model_search.py:123-126``).
    """

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, steps: int = STEPS,
                 multiplier: int = 4, stem_multiplier: int = 3, relaxation=None, in_channels: int = 3,
                 partial_channels: int | None = None, edge_normalization: bool = False, op_subsets=None,
                 skip_dropout: float = 0.0, exclude_ops: Sequence[str] = ()):
        C = check_channels(C)
        layers, steps, stem_multiplier, num_classes, in_channels = positive_sizes(
            layers=layers, steps=steps, stem_multiplier=stem_multiplier, num_classes=num_classes, in_channels=in_channels)
        multiplier = integer(multiplier, "multiplier (nodes concatenated)", minimum=1, maximum=steps)
        if not 0.0 <= skip_dropout < 1.0:
            raise ConfigError(f"skip_dropout must lie in [0, 1), got {skip_dropout}")
        rows = len(edge_rows(steps))
        if op_subsets is not None:
            op_subsets = normalize_op_subsets(op_subsets, OPS, CELL_TYPES, rows)
        if exclude_ops:  # through P-DARTS' per-edge op lists: each edge's list (all ops) less the excluded
            kept = kept_ops(OPS, exclude_ops)
            given = op_subsets or {cell: [OPS] * rows for cell in CELL_TYPES}
            op_subsets = normalize_op_subsets({cell: [[op for op in subset if op in kept] for subset in given[cell]]
                                               for cell in CELL_TYPES}, OPS, CELL_TYPES, rows)
        self.op_subsets = op_subsets
        columns = {cell: len(OPS) if op_subsets is None else len(op_subsets[cell][0]) for cell in CELL_TYPES}
        super().__init__({cell: (rows, columns[cell]) for cell in CELL_TYPES}, OPS, relaxation)
        self.in_channels = in_channels
        self.steps, self.multiplier = steps, multiplier
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev = c_curr, c_curr
        cells, reduction_prev = [], False
        for reduction, c_curr in cell_plan(C, layers):
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

    @contextlib.contextmanager
    def twice_differentiable(self) -> Iterator[None]:
        """The fused cell is plain autograd but for the recomputed convs (first order only): with them off it
        is twice differentiable, at the fused path's cost rather than the per-op path's."""
        previous = [(cell, cell.recompute) for cell in self.cells]
        for cell, _ in previous:
            cell.recompute = False
        try:
            yield
        finally:
            for cell, flag in previous:
                cell.recompute = flag

    def cell_arch_name(self, cell: nn.Module) -> str:
        return "reduce" if cell.reduction else "normal"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels)
        weights = self.op_weights()
        hard = self.hard_indices(weights)
        edges = self.edge_weights()
        if self.path == "fast":  # the whole network in channels-last: oneDNN's convs run ~2x faster in it
            x = x.contiguous(memory_format=torch.channels_last)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[kind], hard[kind], edges[kind])
        return self.classifier(self.global_pooling(s1).flatten(1))

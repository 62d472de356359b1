"""Reduced supernets: partial channel connections and edge normalisation (PC-DARTS), per-edge op subsets
and dropout on skip connections (P-DARTS).

PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search",
ICLR 2020; yuhuixu1993/PC-DARTS ``model_search.py``): on each edge only 1/K of the channels go through
the candidate ops, the other channels bypass them, and a channel shuffle mixes the two before the next
node. Edge normalisation weighs each edge of node i by softmax over the node's incoming edges of an
extra architecture parameter beta, so node i = sum_j softmax(beta_i)_j * f_{i<-j}(x_j).

P-DARTS (Chen et al., "Progressive Differentiable Architecture Search", ICCV 2019; chenxin061/pdarts
``model_search.py``): each edge holds only the candidate ops kept so far, and identity skip connections
are followed by a dropout whose rate the search schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, did_you_mean, shown
from archsearch.spaces.supernet import MixedOp, node_softmax

__all__ = ["channel_shuffle", "PartialChannelMixedOp", "SkipDropout", "build_mixed_op", "node_softmax",
           "check_partial_channels", "set_skip_dropout", "expand_columns", "normalize_op_subsets", "kept_ops"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: view the C channels as (groups, C/groups), transpose, flatten. Output channel
    j is input channel (j mod groups) * C/groups + j div groups: a permutation."""
    n, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        # channels-last: the same permutation of the innermost dimension, and the result channels-last (the
        # NCHW route's copy would put every later conv of the network in NCHW, 2x slower on CPU)
        rows = x.permute(0, 2, 3, 1).view(n, h, w, groups, c // groups).transpose(3, 4).reshape(n, h, w, c)
        return rows.permute(0, 3, 1, 2)
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class PartialChannelMixedOp(MixedOp):
    """sum_k w_k op_k(x[:, :C/K]) on the first C/K channels; the other channels bypass the ops
    (max-pooled 2x2 where the edge strides, as the reference); then a channel shuffle in K groups."""

    def __init__(self, op_names: Sequence[str], ops: Sequence[nn.Module], k: int):
        super().__init__(op_names, ops)
        self.k = k

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard_index: int | None = None) -> torch.Tensor:
        width = x.shape[1] // self.k
        part, bypass = x[:, :width], x[:, width:]
        mixed = super().forward(part, weights, hard_index)
        if mixed.shape[-2:] != x.shape[-2:]:
            if bypass.shape[1]:  # ceil_mode matches the stride-2 ops on odd maps; on even maps it is the reference's
                bypass = F.max_pool2d(bypass, 2, 2, ceil_mode=True)
            else:  # K = 1: nothing bypasses
                bypass = bypass.new_empty(bypass.shape[0], 0, *mixed.shape[-2:])
        return channel_shuffle(torch.cat([mixed, bypass], dim=1), self.k)


class SkipDropout(nn.Dropout):
    """The dropout after an identity skip connection (P-DARTS); its rate is set during the search."""


def set_skip_dropout(model: nn.Module, p: float) -> int:
    """Set the rate of every SkipDropout in ``model``; returns how many there are."""
    modules = [m for m in model.modules() if isinstance(m, SkipDropout)]
    for module in modules:
        module.p = float(p)
    return len(modules)


def check_partial_channels(channels: Sequence[int], k: int | None) -> None:
    if k is None:
        return
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"partial_channels must be a positive integer K (PC-DARTS uses 4), got {k!r}")
    bad = sorted({c for c in channels if c % k})
    if bad:
        raise ConfigError(f"partial_channels={k} must divide every cell's channel count; {bad} are not "
                          f"multiples of {k}: choose C as a multiple of {k} or a smaller K")


def build_mixed_op(op_names: Sequence[str], make_op: Callable[[str, int], nn.Module], channels: int,
                   partial_channels: int | None = None, skip_dropout: float = 0.0) -> MixedOp:
    """The mixed op of one supernet edge over ``op_names``; ``make_op(name, channels)`` builds a candidate.

    ``partial_channels=K`` computes the candidates on channels // K channels (K=1 runs the same code path
    with nothing bypassed, which is DARTS exactly); ``skip_dropout > 0`` follows each identity candidate by
    a SkipDropout, as P-DARTS does when a stage's initial rate is positive.
    """
    width = channels if partial_channels is None else channels // partial_channels
    ops = []
    for name in op_names:
        op = make_op(name, width)
        if skip_dropout > 0 and isinstance(op, nn.Identity):
            op = nn.Sequential(op, SkipDropout(skip_dropout))
        ops.append(op)
    if partial_channels is None:
        return MixedOp(op_names, ops)
    return PartialChannelMixedOp(op_names, ops, partial_channels)


def normalize_op_subsets(op_subsets, ops: Sequence[str], cells: Sequence[str], rows: int) -> dict[str, list[list[str]]]:
    """Validate ``{cell: [[op name, ...] per edge row]}``; ops keep the space's column order."""
    if not isinstance(op_subsets, dict) or set(op_subsets) != set(cells):
        raise ConfigError(f"op_subsets must map each cell type ({', '.join(cells)}) to one list of op names "
                          f"per edge, got {op_subsets!r:.200}")
    out = {}
    for cell in cells:
        subsets = op_subsets[cell]
        if len(subsets) != rows:
            raise ConfigError(f"op_subsets['{cell}'] needs one op list per edge ({rows}), got {len(subsets)}")
        if len({len(s) for s in subsets}) != 1:
            raise ConfigError(f"op_subsets['{cell}'] must keep the same number of ops on every edge")
        cleaned = []
        for row, subset in enumerate(subsets):
            unknown = [op for op in subset if op not in ops]
            if unknown or not subset or len(set(subset)) != len(subset):
                raise ConfigError(f"op_subsets['{cell}'][{row}] = {list(subset)} must be distinct ops of "
                                  f"{', '.join(ops)} (at least one)")
            cleaned.append([op for op in ops if op in subset])
        out[cell] = cleaned
    return out


def kept_ops(ops: Sequence[str], exclude_ops) -> list[str]:
    """``ops`` less ``exclude_ops`` (a supernet's ``exclude_ops`` option: ops no edge holds, so that alpha has
    no column for them), in ``ops`` order; each excluded name must be an op, and one op at least must stay."""
    if isinstance(exclude_ops, (str, bytes)) or not isinstance(exclude_ops, Sequence):
        raise ConfigError(f"exclude_ops must be a list of op names, got {shown(exclude_ops)}")
    for name in exclude_ops:
        if name not in ops:
            raise ConfigError(f"exclude_ops: {shown(name)} is no op of the space ({', '.join(ops)})"
                              f"{did_you_mean(name, ops)}")
    kept = [op for op in ops if op not in exclude_ops]
    if not kept:
        raise ConfigError("exclude_ops removes every op; keep at least one")
    return kept


def expand_columns(weights: torch.Tensor, subsets: Sequence[Sequence[str]], ops: Sequence[str]) -> torch.Tensor:
    """(edges, kept ops) weights -> (edges, all ops), zeros in the columns of ops an edge does not hold."""
    full = torch.zeros(weights.shape[0], len(ops), dtype=weights.dtype, device=weights.device)
    for row, subset in enumerate(subsets):
        full[row, [ops.index(op) for op in subset]] = weights[row]
    return full

"""The shared-weights network of ENAS' macro space (general_child.py's ``_enas_layer``, whole channels,
:245-369): every layer holds all six branches; one architecture computes its layer's branch and adds the
skips it chose.

Architecture parameters: one tensor ``arc`` of (L (L + 1) / 2, 6), one row per decision in the reference's
arc order (per layer its op, then its skip bits; general_child.py:266, :355-358): an op row has a column
per op, a skip row uses columns 0 (off) and 1 (on) and leaves the others unread. A relaxation hands the
rows' weights through the seam of spaces/supernet.py: ``hard`` (ENAS' controller, a fixed path) computes
the chosen branch of each layer and the chosen skips only, each times its one-hot weight with the
straight-through remainder added as MixedOp does; soft weights mix all six branches and weigh each skip by
its column 1.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.spaces.enas_macro_genotypes import OPS
from archsearch.spaces.enas_macro_network import MacroSkeleton, batch_norm, make_branch
from archsearch.spaces.supernet import Supernet


def choice_sizes(layers: int) -> list[int]:
    """Per decision in arc order: 6 for a layer's op, 2 for each of its skip bits."""
    sizes = []
    for layer in range(layers):
        sizes += [len(OPS)] + [2] * layer
    return sizes


def decision_rows(layers: int) -> list[tuple[int, list[int]]]:
    """Per layer, (its op's row, its skip bits' rows) in ``arc``."""
    rows, k = [], 0
    for layer in range(layers):
        rows.append((k, list(range(k + 1, k + 1 + layer))))
        k += 1 + layer
    return rows


class SupernetLayer(nn.Module):
    """All six branches of one layer and, from layer 1 on, the BN after the skips' sum."""

    def __init__(self, channels: int, layer: int, track_running_stats: bool = True):
        super().__init__()
        self.branches = nn.ModuleList(make_branch(op, channels, track_running_stats) for op in OPS)
        self.bn = batch_norm(channels, 1e-5, track_running_stats) if layer else None


class MacroSupernet(Supernet):
    """ENAS' macro child network with shared weights (C channels throughout, as the search network)."""

    def __init__(self, C: int = 36, layers: int = 12, num_classes: int = 10, relaxation=None, in_channels: int = 3,
                 dropout: float = 0.1, track_running_stats: bool = True):
        self.choice_sizes = choice_sizes(layers)
        super().__init__({"arc": (len(self.choice_sizes), len(OPS))}, OPS, relaxation)
        self.net = MacroSkeleton(C, layers, num_classes, in_channels, dropout, double=False,
                                 track_running_stats=track_running_stats)
        self.layers = nn.ModuleList(SupernetLayer(C, layer, track_running_stats) for layer in range(layers))
        self.rows = decision_rows(layers)

    def forward(self, x):
        w = self.op_weights()["arc"]
        hard = self.hard_indices({"arc": w})["arc"]
        self.net.check_input(x)
        nodes = [self.net.stem(x)]
        for l, (layer, (op_row, skip_rows)) in enumerate(zip(self.layers, self.rows)):
            out = self._op(layer, nodes[-1], w[op_row], None if hard is None else hard[op_row])
            if layer.bn is not None:
                for i, row in enumerate(skip_rows):
                    out = out + self._skip(nodes[i], w[row], None if hard is None else hard[row])
                out = layer.bn(out)
            nodes.append(out)
            nodes = self.net.reduce(l, nodes)
        return self.net.classify(nodes[-1])

    @staticmethod
    def _op(layer: SupernetLayer, x: torch.Tensor, w: torch.Tensor, chosen: int | None) -> torch.Tensor:
        if chosen is not None:  # only the sampled branch runs (the other weights are numerically 0)
            return layer.branches[chosen](x) * w[chosen] + (w.sum() - w[chosen])
        out = None
        for k, branch in enumerate(layer.branches):
            term = branch(x) * w[k]
            out = term if out is None else out + term
        return out

    @staticmethod
    def _skip(node: torch.Tensor, w: torch.Tensor, chosen: int | None):
        if chosen is None:
            return node * w[1]
        rest = w[:2].sum() - w[chosen]  # straight-through, as MixedOp
        return node * w[1] + rest if chosen == 1 else rest


__all__ = ["MacroSupernet", "SupernetLayer", "choice_sizes", "decision_rows"]

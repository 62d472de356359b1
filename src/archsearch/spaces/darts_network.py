"""The discrete DARTS networks, as quark0/darts' ``cnn/model.py`` builds them: NetworkCIFAR and NetworkImageNet.

Cells are built from a genotype (spaces/darts_genotypes.py); the ops are quark0/darts' (spaces/darts_ops.py).
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.checks import number
from archsearch.errors import ConfigError, ShapeError
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.darts_genotypes import DartsGenotype
from archsearch.spaces.darts_ops import FactorizedReduce, check_channels, cell_plan, make_op
from archsearch.spaces.ops import ReLUConvBN, drop_path


def count_parameters(net: nn.Module, auxiliary: bool = False) -> int:
    """Parameter count; without the auxiliary head by default, as quark0/darts reports model size."""
    return sum(p.numel() for name, p in net.named_parameters() if auxiliary or "auxiliary" not in name)


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
        C = check_channels(C)
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
        c_prev_prev, c_prev = c_stem, c_stem
        cells, c_aux = [], None
        for i, (reduction, c_curr) in enumerate(cell_plan(C, layers)):
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

"""The discrete NAS-Bench-201 network, built exactly as the benchmark's reference code (xautodl 1.0.0)
builds it: TinyNetwork with InferCell, and the skeleton (stem, stages, reduction blocks, head) the supernet
shares.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.errors import InvalidGenotypeError, ShapeError
from archsearch.groundtruth.nb201_arch import NUM_NODES, OPS, NB201Genotype
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.ops import ReLUConvBN, Zero


def make_op(name: str, channels: int, affine: bool, track_running_stats: bool) -> nn.Module:
    """One candidate op, as xautodl's OPS table: its convs have a bias exactly when the BN has no affine."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, affine, track_running_stats, bias=not affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, affine, track_running_stats, bias=not affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidGenotypeError(f"unknown NAS-Bench-201 op '{name}' (ops: {', '.join(OPS)})")


class ResNetBasicBlock(nn.Module):
    """The fixed reduction block between stages (not searched); its BatchNorms are always affine."""

    #: The zero-cost proxies code (SamsungLabs/zero-cost-nas, foresight/models/nasbench2.py) makes synflow's
    #: BatchNorm-free copy by rebuilding its NB201 model with use_bn=False, an option its reduction block does
    #: not take: that copy keeps these BatchNorms. ``remove_batchnorm`` honours this flag to score as it does.
    keeps_batchnorm_in_bn_free_copy = True

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class Cell(nn.Module):
    """A discrete cell: node i = sum_j op_{i<-j}(node j); output = node 3.

    ``affine`` and ``track_running_stats`` are those of the ops' BatchNorms: True in the benchmark's network
    (xautodl's InferCell); False in the zero-cost proxies code's NB201 model, whose cells are search cells
    masked to one op per edge (then each convolution has a bias, as ReLUConvBN gives it one without affine).
    """

    def __init__(self, genotype: NB201Genotype, channels: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels, affine, track_running_stats) for op in genotype.ops)
        self.live = [op != "none" for op in genotype.ops]

    def forward(self, x):
        nodes = [x]
        k = 0
        for target in range(1, NUM_NODES):
            total = None
            for source in range(target):
                if self.live[k]:
                    term = self.edges[k](nodes[source])
                    total = term if total is None else total + term
                k += 1
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]


class NB201Skeleton(nn.Module):
    """Stem, 3 stages of N cells with ResNet reduction blocks between them, head."""

    def __init__(self, C: int, N: int, num_classes: int, make_cell, in_channels: int = 3):
        super().__init__()
        C, N, num_classes, in_channels = positive_sizes(C=C, N=N, num_classes=num_classes, in_channels=in_channels)
        self.in_channels = in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        channels = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
        reductions = {N, 2 * N + 1}
        cells, c_prev = [], C
        for i, c in enumerate(channels):
            cells.append(ResNetBasicBlock(c_prev, c) if i in reductions else make_cell(c))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.head = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def classify(self, x):
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                             "set in_channels when building the network")
        if x.shape[2] % 4 or x.shape[3] % 4 or min(x.shape[2:]) < 4:
            raise ShapeError(f"the NAS-Bench-201 network halves its input twice: image sides must be multiples of 4, "
                             f"got {x.shape[2]}x{x.shape[3]} (CIFAR: 32, ImageNet16-120: 16)")


class NB201Network(NB201Skeleton):
    """The discrete NAS-Bench-201 network (xautodl's TinyNetwork with InferCell).

    ``affine=False, track_running_stats=False`` gives the cells of the zero-cost proxies code's model instead
    (see ``Cell``); stem, reduction blocks and head are the same in both.
    """

    def __init__(self, genotype: NB201Genotype, C=16, N=5, num_classes=10, in_channels=3, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(C, N, num_classes, lambda c: Cell(genotype, c, affine, track_running_stats), in_channels)
        self.genotype = genotype

    def forward(self, x):
        self.check_input(x)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classify(x)

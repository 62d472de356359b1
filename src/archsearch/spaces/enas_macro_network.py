"""The networks of ENAS' macro space (melodyguan/enas src/cifar10/general_child.py, whole channels):
the parts the supernet shares, and the discrete network in two styles.

- ``style="fixed"`` (the default; what the reference trains a found architecture with, ``_fixed_layer``,
  general_child.py:371-481): conv layers are ReLU-conv1x1-BN-ReLU-convKxK-BN (:390-405), the separable
  ops built as ordinary convolutions as the reference builds them (it reads only the kernel size, :391);
  from layer 1 on, the chosen skips and the op's output are concatenated, then ReLU-conv1x1-BN back to
  C channels (:453-479); the channels double at each pooling point (:215-216).
- ``style="search"``: the supernet's computation of one architecture (``_enas_layer``, :245-369): the op's
  branch, then from layer 1 on the sum of the branch and the chosen skips, then BN (:353-367); C channels
  throughout (the search network never doubles them).

Both share the skeleton: a 3x3 stem conv + BN (:197-201); after the layers at ``pool_layers`` (:95-96) every
node so far passes a factorized reduction of stride 2 (:214-224, :129-177); global average pooling,
dropout and a linear classifier without bias (:231-242). BNs: momentum 0.1 (decay 0.9), eps 1e-5;
the branch's masked BN eps 1e-3 (image_ops.py:92-93, :133-134). Weights: He-normal (fan in), truncated at
two standard deviations as TF 1's ``he_normal`` (common_ops.py:27-30).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, ShapeError
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.enas_macro_genotypes import OPS, MacroGenotype

KERNELS = {"conv_3x3": 3, "sep_conv_3x3": 3, "conv_5x5": 5, "sep_conv_5x5": 5}
STYLES = ("fixed", "search")


def pool_layers(layers: int) -> tuple[int, ...]:
    """The layers after which the network pools: general_child.py:95-96, L // 3 - 1 and 2 (L // 3) - 1
    (none below 3 layers, where both are -1)."""
    d = layers // 3
    return tuple(sorted({d - 1, 2 * d - 1} - {-1}))


def he_normal_(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    std = math.sqrt(2.0 / fan_in)
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def batch_norm(channels: int, eps: float = 1e-5, track_running_stats: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=eps, momentum=0.1, track_running_stats=track_running_stats)


def conv(c_in: int, c_out: int, kernel: int, groups: int = 1) -> nn.Conv2d:
    layer = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=False)
    # TF's fan in of a kernel [k, k, in, out] is k * k * in, also for a depthwise kernel [k, k, C, 1]
    he_normal_(layer.weight, kernel * kernel * (c_in if groups == 1 else c_out))
    return layer


class ConvBranch(nn.Module):
    """``_conv_branch`` with every channel (general_child.py:483-544): conv1x1-BN-ReLU, then the KxK conv
    (separable: depthwise KxK then pointwise 1x1) - BN (eps 1e-3) - ReLU."""

    def __init__(self, channels: int, kernel: int, separable: bool, track_running_stats: bool = True):
        super().__init__()
        self.inp = nn.Sequential(conv(channels, channels, 1), batch_norm(channels, 1e-5, track_running_stats),
                                 nn.ReLU())
        self.conv = (nn.Sequential(conv(channels, channels, kernel, groups=channels), conv(channels, channels, 1))
                     if separable else conv(channels, channels, kernel))
        self.bn = batch_norm(channels, 1e-3, track_running_stats)

    def forward(self, x):
        return F.relu(self.bn(self.conv(self.inp(x))))


class PoolBranch(nn.Module):
    """``_pool_branch`` (general_child.py:546-589): conv1x1-BN-ReLU, then a 3x3 pool of stride 1, "SAME"
    (TF's average leaves the padding out of the count)."""

    def __init__(self, channels: int, kind: str, track_running_stats: bool = True):
        super().__init__()
        self.inp = nn.Sequential(conv(channels, channels, 1), batch_norm(channels, 1e-5, track_running_stats),
                                 nn.ReLU())
        self.pool = (nn.AvgPool2d(3, 1, 1, count_include_pad=False) if kind == "avg" else nn.MaxPool2d(3, 1, 1))

    def forward(self, x):
        return self.pool(self.inp(x))


def make_branch(op: str, channels: int, track_running_stats: bool = True) -> nn.Module:
    """One of the six branches of ``_enas_layer`` (general_child.py:268-293)."""
    if op in KERNELS:
        return ConvBranch(channels, KERNELS[op], op.startswith("sep_"), track_running_stats)
    return PoolBranch(channels, "avg" if op == "avg_pool_3x3" else "max", track_running_stats)


class FactorizedReduction(nn.Module):
    """general_child.py:129-177, stride 2: two 1x1 convs to C_out / 2 each, one on the even pixels and one
    on the odd (the input padded right and bottom, shifted by one), concatenated, BN. No ReLU."""

    def __init__(self, c_in: int, c_out: int, track_running_stats: bool = True):
        super().__init__()
        self.path1, self.path2 = conv(c_in, c_out // 2, 1), conv(c_in, c_out // 2, 1)
        self.bn = batch_norm(c_out, 1e-5, track_running_stats)

    def forward(self, x):
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], dim=1))


class MacroSkeleton(nn.Module):
    """Stem, the reductions after ``pool_layers`` and the head; ``layers`` are built by the subclass."""

    def __init__(self, C: int, num_layers: int, num_classes: int, in_channels: int, dropout: float,
                 double: bool, track_running_stats: bool = True):
        super().__init__()
        C, num_layers, num_classes, in_channels = positive_sizes(C=C, layers=num_layers, num_classes=num_classes,
                                                                in_channels=in_channels)
        self.pools = pool_layers(num_layers)
        if self.pools and C % 2:  # general_child.py:131: the reduction's two halves
            raise ConfigError(f"the enas-macro network pools: C must be even, got {C}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"the enas-macro network's dropout must lie in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.stem = nn.Sequential(conv(in_channels, C, 3), batch_norm(C, 1e-5, track_running_stats))
        #: channels of each layer
        self.widths, c = [], C
        self.reductions = nn.ModuleDict()
        for layer in range(num_layers):
            self.widths.append(c)
            if layer in self.pools:
                c_out = 2 * c if double else c
                # every node so far: the stem and layers 0..layer
                self.reductions[str(layer)] = nn.ModuleList(FactorizedReduction(c, c_out, track_running_stats)
                                                            for _ in range(layer + 2))
                c = c_out
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, num_classes, bias=False)
        he_normal_(self.classifier.weight, c)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                             "set in_channels when building the network")

    def reduce(self, layer: int, nodes: list[torch.Tensor]) -> list[torch.Tensor]:
        if layer not in self.pools:
            return nodes
        return [reduction(node) for reduction, node in zip(self.reductions[str(layer)], nodes)]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(x.mean(dim=(2, 3))))


class FixedLayer(nn.Module):
    """``_fixed_layer`` (general_child.py:382-481). A pooling op has no fixed form in the reference (its
    branches are ``pass``, :406-409, so a fixed arc with one fails there); ours is ReLU-conv1x1-BN then the
    pool, the search branch's parts in the fixed layer's order (our choice)."""

    def __init__(self, op: str, channels: int, layer: int, skips: int):
        super().__init__()
        if op in KERNELS:
            self.op = nn.Sequential(nn.ReLU(), conv(channels, channels, 1), batch_norm(channels), nn.ReLU(),
                                    conv(channels, channels, KERNELS[op]), batch_norm(channels))
        else:
            pool = (nn.AvgPool2d(3, 1, 1, count_include_pad=False) if op == "avg_pool_3x3" else nn.MaxPool2d(3, 1, 1))
            self.op = nn.Sequential(nn.ReLU(), conv(channels, channels, 1), batch_norm(channels), pool)
        self.skip = (nn.Sequential(nn.ReLU(), conv((skips + 1) * channels, channels, 1), batch_norm(channels))
                     if layer else None)

    def forward(self, x, skips: list[torch.Tensor]):
        out = self.op(x)
        return out if self.skip is None else self.skip(torch.cat(skips + [out], dim=1))


class SearchLayer(nn.Module):
    """One architecture's layer of the search network: its branch; from layer 1 on, BN of the branch plus
    the chosen skips (general_child.py:353-367)."""

    def __init__(self, op: str, channels: int, layer: int, track_running_stats: bool = True):
        super().__init__()
        self.op = make_branch(op, channels, track_running_stats)
        self.bn = batch_norm(channels, 1e-5, track_running_stats) if layer else None

    def forward(self, x, skips: list[torch.Tensor]):
        out = self.op(x)
        if self.bn is None:
            return out
        for skip in skips:
            out = out + skip
        return self.bn(out)


class MacroNetwork(MacroSkeleton):
    """The discrete network of one macro genotype (see the module's docstring for ``style``)."""

    def __init__(self, genotype: MacroGenotype, C: int = 96, num_classes: int = 10, in_channels: int = 3,
                 dropout: float = 0.5, style: str = "fixed"):
        if style not in STYLES:
            raise ConfigError(f"the enas-macro network's style must be one of {', '.join(STYLES)}, got {style!r}")
        super().__init__(C, genotype.layers, num_classes, in_channels, dropout, double=style == "fixed")
        self.genotype, self.style = genotype, style
        self.layers = nn.ModuleList(
            FixedLayer(op, self.widths[l], l, len(genotype.inputs(l))) if style == "fixed"
            else SearchLayer(op, self.widths[l], l) for l, op in enumerate(genotype.ops))

    def forward(self, x):
        self.check_input(x)
        nodes = [self.stem(x)]  # node 0: the stem; node i: layer i - 1's output
        for l, layer in enumerate(self.layers):
            nodes.append(layer(nodes[-1], [nodes[i] for i in self.genotype.inputs(l)]))
            nodes = self.reduce(l, nodes)
        return self.classify(nodes[-1])


__all__ = ["KERNELS", "OPS", "STYLES", "ConvBranch", "FactorizedReduction", "FixedLayer", "MacroNetwork",
           "MacroSkeleton", "PoolBranch", "SearchLayer", "make_branch", "pool_layers"]

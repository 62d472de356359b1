"""The eight candidate operations of the DARTS CNN space (Liu et al., ICLR 2019).

Built as the reference implementation (quark0/darts, ``cnn/operations.py``) builds them: every
conv op starts with a ReLU, convs have no bias, BatchNorm closes each branch; ``affine`` is False
in the search supernet and True in the discrete network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError, InvalidGenotypeError
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.ops import Zero

#: the order of quark0/darts' PRIMITIVES, which is the column order of the architecture parameters
OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: the ops a genotype is drawn from: the DARTS rule never selects ``none``
SEARCHABLE_OPS = tuple(op for op in OPS if op != "none")


class DilConv(nn.Sequential):
    """ReLU -> depthwise dilated conv -> pointwise conv -> BN (one depthwise-separable block)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks; only the first one strides (as the reference)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two 1x1 stride-2 convs, the second shifted by one pixel.

    The reference crops the shifted input (``x[:, :, 1:, 1:]``), which only lines up with the
    unshifted branch on even sizes; here an odd size is padded by one zero row/column after the
    crop, so both branches give ceil(H/2). On even sizes this is exactly the reference.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ConfigError(f"FactorizedReduce needs an even number of output channels, got {c_out}; "
                              "choose an even initial channel count C")
        self.relu = nn.ReLU(inplace=False)
        # The stride of 2 is taken by subsampling the input (below), so the convs themselves run at
        # stride 1: oneDNN's AVX2 backward-weights kernel for a strided 1x1 conv on a channels-last
        # input with 2-6 input channels writes out of bounds (heap corruption, SIGABRT; see
        # docs/performance.md, "oneDNN's strided 1x1 kernel"). A 1x1 conv at stride 2 reads exactly
        # the pixels x[..., ::2, ::2], so the result is the same.
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:]
        height, width = x.shape[-2:]
        if height % 2 or width % 2:
            shifted = F.pad(shifted, (0, width % 2, 0, height % 2))
        # the subsampled views made dense in the input's memory format: a strided view runs the conv in NCHW
        memory_format = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return self.bn(torch.cat([self.conv_1(x[:, :, ::2, ::2].contiguous(memory_format=memory_format)),
                                  self.conv_2(shifted[:, :, ::2, ::2].contiguous(memory_format=memory_format))], dim=1))


def check_channels(C: int) -> int:
    """The initial channel count of a DARTS network: even, as FactorizedReduce splits it in two halves."""
    (C,) = positive_sizes(C=C)
    if C < 2 or C % 2:
        raise ConfigError(f"the DARTS networks need an even initial channel count C >= 2, got {C}")
    return C


def make_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    """One candidate op on ``channels`` channels (input and output), as quark0/darts' OPS table."""
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine)
    if name == "sep_conv_3x3":
        return SepConv(channels, channels, 3, stride, 1, affine)
    if name == "sep_conv_5x5":
        return SepConv(channels, channels, 5, stride, 2, affine)
    if name == "dil_conv_3x3":
        return DilConv(channels, channels, 3, stride, 2, 2, affine)
    if name == "dil_conv_5x5":
        return DilConv(channels, channels, 5, stride, 4, 2, affine)
    raise InvalidGenotypeError(f"unknown DARTS op '{name}' (ops: {', '.join(OPS)})")


def make_search_op(name: str, channels: int, stride: int) -> nn.Module:
    """A supernet candidate: no affine BN, and pools followed by a BN (quark0/darts' MixedOp) so that
    their output scale is comparable with the conv branches'."""
    op = make_op(name, channels, stride, affine=False)
    if "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
    return op


def cell_plan(C: int, layers: int) -> list[tuple[bool, int]]:
    """(reduces, channels) of each of ``layers`` cells: DARTS puts its two reduction cells at 1/3 and 2/3 of
    the depth, each doubling the channels, in the search supernet and the evaluation network alike."""
    plan, channels = [], C
    for index in range(layers):
        reduction = index in (layers // 3, 2 * layers // 3)
        channels *= 2 if reduction else 1
        plan.append((reduction, channels))
    return plan

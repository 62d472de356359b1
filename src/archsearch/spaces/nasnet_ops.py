"""The thirteen operations of the NASNet search space (Zoph, Vasudevan, Shlens & Le, CVPR 2018, Sec. 3).

Each op maps a state of ``c_in`` channels to ``c_out`` (the cell's filter count F) and strides when it
reads a cell input inside a reduction cell. They are built as the authors' TensorFlow code builds them:

- separable convs, pools and identity: tensorflow/models ``research/slim/nets/nasnet/nasnet_utils.py``
  (``_stacked_separable_conv``, ``_pooling``, ``NasNetABaseCell._apply_conv_operation``): every separable
  conv is stacked twice, each ReLU -> depthwise kxk -> pointwise 1x1 -> BN, only the first striding;
  identity that must stride or change width is ReLU -> 1x1 conv (stride) -> BN; a pool that changes
  width is followed by 1x1 conv -> BN;
- the plain convs, which no published NASNet-A cell uses and the slim code does not implement, as the
  same family's AmoebaNet code builds them: tensorflow/tpu ``models/official/amoeba_net/network_utils.py``
  (``BaseCell._apply_operation``, lines 429-481 at 7dc921f): a bottleneck ReLU -> 1x1 to F/4 (3F/8 for 1x3-3x1) -> BN -> ReLU -> the
  conv -> BN -> ReLU -> 1x1 to F -> BN; ``conv_1x1`` is ReLU -> 1x1 (stride) -> BN. ``dilated_conv_3x3``
  is that code's ``dilated_3x3_rate_2`` (a plain 3x3 conv of dilation 2, not DARTS' separable one).

Convolutions have no bias (the slim arg scopes set ``biases_initializer=None``); pools pad so that a
stride of 1 keeps the size, and average pools leave the padding out of the mean (TensorFlow's SAME).
"""

from __future__ import annotations

from torch import nn

from archsearch.errors import InvalidGenotypeError
from archsearch.spaces.darts_ops import FactorizedReduce

#: the NASNet paper's list (Sec. 3), in its order
OPS = (
    "skip_connect",      # identity
    "conv_1x3_3x1",      # 1x3 then 3x1 convolution
    "conv_1x7_7x1",      # 1x7 then 7x1 convolution
    "dilated_conv_3x3",  # 3x3 dilated convolution
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",      # depthwise-separable, stacked twice
    "sep_conv_5x5",
    "sep_conv_7x7",
)
#: PNASNet's eight (Liu et al., ECCV 2018, Sec. 3.1), AmoebaNet's eight (Real et al., AAAI 2019, Sec. 3)
#: differ from it only in the 3x3 dilated *separable* conv, which no published AmoebaNet cell uses
PNASNET_OPS = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
               "dilated_conv_3x3", "conv_1x7_7x1")
#: ENAS' micro space (Pham et al., ICML 2018, Sec. 2.3; melodyguan/enas micro_child.py: ops 0-4)
ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "skip_connect")
#: how a block combines its two op outputs (NASNet, Sec. 3, step 5)
COMBINES = ("add", "concat")


def bn(channels: int) -> nn.BatchNorm2d:
    # the slim CIFAR arg scope: decay 0.9 (PyTorch momentum 0.1), epsilon 1e-5, scale=True
    return nn.BatchNorm2d(channels)


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv -> BN, with a kernel of any (h, w), stride of any (h, w), 'same' padding."""

    def __init__(self, c_in: int, c_out: int, kernel=1, stride=1, dilation: int = 1, relu: bool = True):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
        layers = [nn.ReLU(inplace=False)] if relu else []
        layers += [nn.Conv2d(c_in, c_out, (kh, kw), stride=stride, padding=padding, dilation=dilation, bias=False),
                   bn(c_out)]
        super().__init__(*layers)


class SeparableStack(nn.Sequential):
    """``separable_kxk_2``: two (ReLU, depthwise kxk, pointwise 1x1 to c_out, BN), only the first strides."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, layers: int = 2):
        blocks = []
        for i in range(layers):
            width = c_in if i == 0 else c_out
            blocks.append(nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(width, width, kernel, stride=stride if i == 0 else 1, padding=kernel // 2, groups=width,
                          bias=False),
                nn.Conv2d(width, c_out, 1, bias=False),
                bn(c_out),
            ))
        super().__init__(*blocks)


class Bottleneck(nn.Sequential):
    """AmoebaNet's plain conv ops: ReLU-1x1(reduced)-BN, ReLU-conv-BN, ReLU-1x1(c_out)-BN (network_utils.py)."""

    def __init__(self, c_in: int, c_out: int, kind: str, stride: int):
        reduced = 3 * c_out // 8 if kind == "1x3_3x1" else c_out // 4
        if reduced < 1:  # the reference drops the bottleneck where it would have no channel
            super().__init__(*_conv_core(c_in, c_out, kind, stride))
            return
        super().__init__(ReLUConvBN(c_in, reduced), *_conv_core(reduced, reduced, kind, stride),
                         ReLUConvBN(reduced, c_out))


def _conv_core(c_in: int, c_out: int, kind: str, stride: int) -> list[nn.Module]:
    """ReLU, the conv itself, BN (``_apply_conv_operation``); the factorised kxk is 1xk, BN, ReLU, kx1."""
    if kind in ("1x3_3x1", "1x7_7x1"):
        k = int(kind[2])
        return [nn.ReLU(inplace=False),
                nn.Conv2d(c_in, c_out, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False),
                bn(c_out), nn.ReLU(inplace=False),
                nn.Conv2d(c_out, c_out, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False),
                bn(c_out)]
    dilation = 2 if kind == "dilated_3x3" else 1
    return list(ReLUConvBN(c_in, c_out, 3, stride, dilation))


class PoolThenProject(nn.Sequential):
    """A pool, then (where the width changes) a 1x1 conv and BN, as ``_apply_conv_operation``."""

    def __init__(self, kind: str, kernel: int, c_in: int, c_out: int, stride: int):
        pool = (nn.AvgPool2d(kernel, stride, kernel // 2, count_include_pad=False) if kind == "avg"
                else nn.MaxPool2d(kernel, stride, kernel // 2))
        layers = [pool]
        if c_in != c_out:
            layers.append(ReLUConvBN(c_in, c_out, relu=False))
        super().__init__(*layers)


def make_op(name: str, c_in: int, c_out: int, stride: int, identity_reduce: str = "conv") -> nn.Module:
    """One op. ``identity_reduce``: what ``skip_connect`` does where it must stride, ``conv`` (NASNet's
    strided ReLU-1x1-BN) or ``factorized`` (ENAS' factorized reduction, micro_child.py ``_fixed_layer``)."""
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        if stride == 2 and identity_reduce == "factorized":
            reduce = FactorizedReduce(c_in, c_out)
            reduce.relu = nn.Identity()  # ENAS reduces the raw state: no ReLU before the two paths
            return reduce
        return ReLUConvBN(c_in, c_out, 1, stride)
    if name.startswith("sep_conv_"):
        return SeparableStack(c_in, c_out, int(name[-1]), stride)
    if name.startswith(("avg_pool_", "max_pool_")):
        return PoolThenProject(name[:3], int(name[-1]), c_in, c_out, stride)
    if name == "conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride)
    if name in ("conv_1x3_3x1", "conv_1x7_7x1", "conv_3x3", "dilated_conv_3x3"):
        kind = {"conv_1x3_3x1": "1x3_3x1", "conv_1x7_7x1": "1x7_7x1", "conv_3x3": "3x3",
                "dilated_conv_3x3": "dilated_3x3"}[name]
        return Bottleneck(c_in, c_out, kind, stride)
    raise InvalidGenotypeError(f"unknown NASNet op '{name}' (ops: {', '.join(OPS)})")

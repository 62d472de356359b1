"""Operations both cell spaces build from, and drop-path.

NAS-Bench-201 (xautodl) and DARTS (quark0/darts) define the same ReLU-conv-BN block and the same ``none``
op; they differ only in options, which are parameters here (each space's ``make_op`` passes its own).
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.errors import ShapeError


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(kernel, stride) -> BN.

    ``bias``: DARTS' convs have none; xautodl's have one exactly when the BN has no affine (NAS-Bench-201
    passes ``bias=not affine``).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True,
                 track_running_stats: bool = True, bias: bool = False):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (spatially subsampled when it strides)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability p and rescale the rest by 1/(1-p).

    The mask is drawn per sample (shape (N, 1, 1, 1)) from torch's global generator, as dropout is.
    """
    if drop_prob <= 0.0:
        return x
    keep_prob = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep_prob)
    return x / keep_prob * mask


def check_images(x: torch.Tensor, in_channels: int) -> None:
    """Raise ShapeError unless ``x`` is a batch of images with ``in_channels`` channels, (N, C, H, W)."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ShapeError(f"expected images of shape (N, {in_channels}, H, W), got {tuple(x.shape)}")

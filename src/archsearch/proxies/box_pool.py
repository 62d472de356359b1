"""3x3, stride-1 average pooling without padding counted, with the CPU kernel's numbers at a fraction of its cost.

PyTorch's CPU ``avg_pool2d`` (contiguous input) computes each output on its own, a scalar loop; on the
NAS-Bench-201 and DARTS cells (``AvgPool2d(3, 1, 1, count_include_pad=False)``) it and its backward take
about as long as the convolutions. The same sums as whole-tensor shifted additions:

    forward   y = S(x) / n           backward   dL/dx = S(g / n),  g = dL/dy
    S(t)[i, j] = 0 + t[i-1, j-1] + t[i-1, j] + t[i-1, j+1] + t[i, j-1] + ... + t[i+1, j+1]

over the in-image terms only, n the number of in-image positions of each window (4, 6 or 9). The kernel
sums a window in this row-major order from zero in the input's dtype, divides by n, and its backward adds
g / n into the input's gradient output by output in the same row-major order, so S gives the same bits.
The backward of each is the other, as in autograd's formulas, so second derivatives (grasp) match too.
``tests/test_proxy_fast.py`` checks all three against the kernel bit for bit. One exception, of no score's
concern (a score that meets one is NaN either way): a window holding a NaN together with +inf and -inf
gives a NaN of the other sign than the kernel's (x86 passes on the first operand's NaN, and the two
orders meet the input's NaN and the one inf - inf makes differently).
"""

from __future__ import annotations

import torch
from torch import nn

def window_counts(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """n: in-image positions of each 3x3 window, shape (H, W)."""
    rows = torch.full((height,), 3.0, dtype=like.dtype, device=like.device)
    cols = torch.full((width,), 3.0, dtype=like.dtype, device=like.device)
    rows[0] = rows[-1] = 2.0 if height > 1 else 1.0
    cols[0] = cols[-1] = 2.0 if width > 1 else 1.0
    return rows[:, None] * cols[None, :]  # small integers: exact


def box_sum(t: torch.Tensor) -> torch.Tensor:
    """S(t): each window's terms added in row-major order, starting from zeros.

    The images are laid out with a border of zeros, (H + 2) x (W + 2), and read as one flat vector: there
    a window's term (dh, dw) lies a fixed distance dh (W + 2) + dw away from its centre, for every position
    of every image, so each of the nine terms is one contiguous addition over the whole batch. A border
    term adds +0.0, which changes no sum: the running sum starts at +0.0 and can never become -0.0 (in
    round-to-nearest x + y is -0.0 only when both are), and s + 0.0 = s for every other s. Positions on
    the border collect terms of neighbouring images and are dropped.
    """
    height, width = t.shape[-2:]
    padded = t.new_zeros(*t.shape[:-2], height + 2, width + 2)
    padded[..., 1:-1, 1:-1] = t
    flat = padded.view(-1)
    total = torch.zeros_like(flat)
    row = width + 2
    first, last = row + 1, flat.numel() - row - 1  # the first image's first centre, past the last one's last
    for dh in (-1, 0, 1):
        for dw in (-1, 0, 1):
            shift = dh * row + dw
            total[first:last].add_(flat[first + shift:last + shift])
    return total.view_as(padded)[..., 1:-1, 1:-1].contiguous()


class _Average(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return box_sum(x) / window_counts(*x.shape[-2:], x)

    @staticmethod
    def backward(ctx, grad):
        return _AverageBackward.apply(grad)


class _AverageBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad):
        return box_sum(grad / window_counts(*grad.shape[-2:], grad))

    @staticmethod
    def backward(ctx, grad_grad):
        return _Average.apply(grad_grad)


def box_average(x: torch.Tensor) -> torch.Tensor:
    """``avg_pool2d(x, 3, 1, 1, count_include_pad=False)`` on a contiguous (N, C, H, W) CPU float tensor."""
    return _Average.apply(x.contiguous())


def replaceable(module: nn.Module) -> bool:
    return (type(module) is nn.AvgPool2d and module.kernel_size in (3, (3, 3)) and module.stride in (1, (1, 1))
            and module.padding in (1, (1, 1)) and not module.count_include_pad and not module.ceil_mode
            and module.divisor_override is None)


class BoxAverage3x3(nn.AvgPool2d):
    """``AvgPool2d(3, 1, 1, count_include_pad=False)`` through ``box_average`` where it gives the kernel's
    bits (CPU, contiguous float32/float64 images); anything else goes to the kernel."""

    def __init__(self):
        super().__init__(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        if x.device.type == "cpu" and x.dim() == 4 and x.dtype in (torch.float32, torch.float64) \
                and x.is_contiguous():
            return box_average(x)
        return super().forward(x)


def use_box_average(net: nn.Module) -> int:
    """Replace, in place, every ``AvgPool2d(3, 1, 1, count_include_pad=False)`` of ``net``; returns how many."""
    replaced = 0
    for parent in net.modules():
        for name, child in list(parent.named_children()):
            if replaceable(child):
                parent._modules[name] = BoxAverage3x3()
                replaced += 1
    return replaced

"""FLOPs and parameter counts of a network, measured with forward hooks on one input.

Convention (per image, multiply-adds counted once, as xautodl's ``get_model_infos`` and the
NAS-Bench-201 / DARTS papers report "FLOPs"):

=========================  ===========================================================
module                     FLOPs
=========================  ===========================================================
Conv1d/2d/3d               Cin/groups * prod(kernel) * Cout * prod(output spatial)
                           + Cout * prod(output spatial) if it has a bias
Linear                     in * out (+ out if it has a bias)
BatchNorm (any dim)        2 per output element: in evaluation mode it is y = a*x + b
                           per channel (the running statistics folded into a, b)
ReLU and other pointwise   1 per output element
activations
AvgPool / MaxPool          kernel area * output elements (xautodl's pooling rule)
AdaptiveAvg/MaxPool        (input area / output area) * output elements, i.e. one per
                           input element when the sizes divide
Identity, Dropout,         0
Flatten, anything else
=========================  ===========================================================

Only leaf modules are hooked, so arithmetic written in a ``forward`` (the sums at a cell's nodes,
a residual ``+``, the ``x * 0`` of a zero op) is not counted: on NAS-Bench-201 none of those enters
the published figures either. docs/training.md compares this convention with the benchmark's
FLOPs column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from archsearch.errors import ShapeError

FlopRule = Callable[[nn.Module, tuple, torch.Tensor], int]

_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU,
              nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish)


def _numel_per_image(t: torch.Tensor) -> int:
    return int(t[0].numel()) if t.dim() > 0 else 1


def conv_flops(m: nn.modules.conv._ConvNd, inputs, output) -> int:
    positions = math.prod(output.shape[2:])  # Hout * Wout (per image)
    macs = m.in_channels // m.groups * math.prod(m.kernel_size) * m.out_channels * positions
    return macs + (m.out_channels * positions if m.bias is not None else 0)


def linear_flops(m: nn.Linear, inputs, output) -> int:
    rows = _numel_per_image(output) // m.out_features  # >1 when applied to a sequence
    return rows * (m.in_features * m.out_features + (m.out_features if m.bias is not None else 0))


def batchnorm_flops(m, inputs, output) -> int:
    return 2 * _numel_per_image(output)  # y = a*x + b


def pointwise_flops(m, inputs, output) -> int:
    return _numel_per_image(output)


def pool_flops(m, inputs, output) -> int:
    kernel = m.kernel_size if isinstance(m.kernel_size, Sequence) else (m.kernel_size,) * (output.dim() - 2)
    return math.prod(kernel) * _numel_per_image(output)


def adaptive_pool_flops(m, inputs, output) -> int:
    area_in = math.prod(inputs[0].shape[2:])
    area_out = math.prod(output.shape[2:])
    return max(area_in // max(area_out, 1), 1) * _numel_per_image(output)


#: module type -> FLOPs of one call, per image; the first matching type in this order wins
FLOP_RULES: list[tuple[tuple[type, ...], FlopRule]] = [
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), conv_flops),
    ((nn.Linear,), linear_flops),
    ((nn.modules.batchnorm._BatchNorm,), batchnorm_flops),
    (_POINTWISE, pointwise_flops),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), pool_flops),
    ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
      nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), adaptive_pool_flops),
]


def _rule_for(module: nn.Module) -> FlopRule | None:
    for types, rule in FLOP_RULES:
        if isinstance(module, types):
            return rule
    return None


def flops_by_module(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """FLOPs per image of every counted leaf module (name -> FLOPs summed over its calls)."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) < 2 or any(s <= 0 for s in input_shape):
        raise ShapeError(f"input_shape must be (batch, channels, ...) with positive sizes, got {input_shape}")
    counts: dict[str, int] = {}
    handles = []

    def hook_for(name: str, rule: FlopRule):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            counts[name] = counts.get(name, 0) + int(rule(module, inputs, out))
        return hook

    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue
        rule = _rule_for(module)
        if rule is not None:
            handles.append(module.register_forward_hook(hook_for(name, rule)))
    was_training = model.training
    try:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        model.eval()  # evaluation graph: no auxiliary head, no drop-path
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return counts


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass per image (the convention in this module's docstring).

    ``input_shape`` includes the batch dimension, e.g. ``(1, 3, 32, 32)``; the count is per image
    whatever the batch size. The model runs once in evaluation mode and is put back as it was.
    """
    return sum(flops_by_module(model, input_shape).values())


#: bytes (parameters plus a generous bound on activations) up to which ``params_and_flops`` builds the network
#: for real; a larger one is built on the meta device, which computes shapes and allocates nothing
REAL_BUILD_BYTES = 2**30


def params_and_flops(build: Callable[[], nn.Module], input_shape: Sequence[int]) -> tuple[int, int]:
    """Parameters (as ``count_params``) and FLOPs per image (as ``count_flops``) of the network ``build()``
    returns, with the memory of none: a network too large for this machine is measured on the meta device.

    The meta device is not the default because its first forward pass imports its kernels (seconds).
    """
    with torch.device("meta"):
        net = build()
    params = count_params(net)
    widest = max((m.out_channels for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)), default=1)
    maps = math.prod(int(s) for s in input_shape) // max(int(input_shape[1]), 1) if len(input_shape) > 1 else 1
    if 4 * (params + 8 * widest * maps) <= REAL_BUILD_BYTES:  # 8 maps alive at once bounds a cell's forward
        net = build()
    return params, count_flops(net, input_shape)


def count_params(model: nn.Module, exclude: Sequence[str] = ("auxiliary",)) -> int:
    """Number of parameters, leaving out those whose name contains any of ``exclude``
    (the auxiliary head by default, as the DARTS and NAS-Bench-201 papers report model size)."""
    return sum(p.numel() for name, p in model.named_parameters() if not any(word in name for word in exclude))

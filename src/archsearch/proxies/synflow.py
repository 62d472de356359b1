"""SynFlow (Tanaka et al., NeurIPS 2020) as a zero-cost proxy (Abdelfattah et al., ICLR 2021).

    R = 1^T (prod_l |W_l|) 1,   synflow = sum over Conv2d/Linear weights of |w o dR/dw|

computed the way the zero-cost code does (foresight/pruners/measures/synflow.py): BatchNorm removed (its
``bn=False`` copy, except where a module asks to keep its own, as NAS-Bench-201's reduction blocks do: see
``base.remove_batchnorm``), every parameter replaced by its absolute value, a single all-ones input, the
network in float64 so that the product of ~20 layers of absolute weights does not overflow float32, and in
training mode, so a kept BatchNorm normalises with the statistics of that one input.
"""

from __future__ import annotations

import torch

from archsearch.proxies.base import PROXIES, Probe, remove_batchnorm, weight_layers


def synflow_of(net: torch.nn.Module, input_shape: tuple[int, ...], device: torch.device) -> float:
    """synflow of ``net`` at its current weights; ``net`` is consumed (BatchNorm removed, |theta|, float64)."""
    net = remove_batchnorm(net.train()).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()  # linearise: |theta|
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    net(ones).sum().backward()  # R = sum of the outputs
    with torch.no_grad():
        return float(sum((layer.weight * layer.weight.grad).abs().sum()
                         for layer in weight_layers(net) if layer.weight.grad is not None))


@PROXIES.register("synflow")
def synflow(probe: Probe) -> float:
    return synflow_of(probe.copy(), tuple(probe.inputs.shape[1:]), probe.inputs.device)

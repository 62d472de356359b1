"""Saliency proxies from the loss gradient on one batch: snip, grad_norm, grasp, fisher.

Each follows the zero-cost proxies code (Abdelfattah et al., ICLR 2021; measures summed over every
Conv2d and Linear weight of the network, BatchNorm present and in training mode):

    snip      = sum |dL/dw o w|                      (Lee et al., 2019)
    grad_norm = sum over layers of ||dL/dW_l||_2      (a per-layer norm, summed, as that code does)
    grasp     = sum -w o (H g),  g = dL/dw            (Wang et al., 2020; sign as in the zero-cost code)
    fisher    = sum over layers and output channels of
                (0.5 mean_n (sum_spatial a o dL/da)^2) x (weights per output channel)
                with a the output of the Conv2d/Linear (Turner et al., 2020; Theis et al., 2018)

Fisher hooks the output of every convolution and linear layer, bias included, exactly where the
zero-cost code inserts its identity "dummy" op (foresight/pruners/measures/fisher.py): in NAS-Bench-201
each searched op (ReLU-Conv-BN) holds one convolution, so this is the activation of each cell op before
its BatchNorm. The per-channel value is broadcast to every weight of the channel before summing, as that
code does (p_utils.reshape_elements). In the zero-cost code's NB201 model those convolutions have a bias
(its cells' BatchNorms have no affine), and the bias is part of the activation. A batch-statistics
BatchNorm after a is blind to a channel's shift and scale, so dL/da sums to zero over the batch and the
spatial positions and is orthogonal there to a - mean; an image's term sum_spatial a o dL/da is then
sum_spatial (a - mean) o dL/da + mean sum_spatial dL/da, and a bias moves the mean. So the bias changes
fisher (and synflow, whose copy has no such BatchNorm), while the BatchNorm cancels it for snip,
grad_norm, grasp and jacob_cov.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archsearch.proxies.base import PROXIES, Probe, weight_layers


@dataclass
class LossPass:
    """Per weight layer: the weight, dL/dW (None where no gradient reached it) and per-channel Fisher."""

    weights: list[torch.Tensor]
    grads: list[torch.Tensor | None]
    fisher: list[torch.Tensor | None]


def loss_pass(probe: Probe) -> LossPass:
    """One forward and backward of the loss on a fresh copy; shared by snip, grad_norm, fisher, grasp."""

    def compute() -> LossPass:
        net = probe.copy()
        layers = weight_layers(net)
        fisher: list[torch.Tensor | None] = [None] * len(layers)
        handles = []

        def watch(index: int):
            def forward_hook(module, inputs, output):
                if not output.requires_grad:
                    return
                act = output.detach()

                def on_grad(grad):
                    # g_nk = sum over spatial positions of a o dL/da; Fisher_k = 0.5 mean_n g_nk^2
                    g = (act * grad).flatten(2).sum(-1) if act.dim() > 2 else act * grad
                    value = g.pow(2).mean(0).mul(0.5)
                    fisher[index] = value if fisher[index] is None else fisher[index] + value

                output.register_hook(on_grad)

            return forward_hook

        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(watch(i)))
        try:
            net.zero_grad(set_to_none=True)
            loss = probe.loss_fn(net(probe.inputs), probe.targets)
            loss.backward()
        finally:
            for handle in handles:
                handle.remove()
        return LossPass(
            weights=[layer.weight.detach() for layer in layers],
            grads=[None if layer.weight.grad is None else layer.weight.grad.detach() for layer in layers],
            fisher=fisher,
        )

    return probe.cached("loss_pass", compute)


@PROXIES.register("snip")
def snip(probe: Probe) -> float:
    record = loss_pass(probe)
    return float(sum((g * w).abs().sum() for w, g in zip(record.weights, record.grads) if g is not None))


@PROXIES.register("grad_norm")
def grad_norm(probe: Probe) -> float:
    record = loss_pass(probe)
    return float(sum(g.norm() for g in record.grads if g is not None))


@PROXIES.register("fisher")
def fisher(probe: Probe) -> float:
    record = loss_pass(probe)
    total = 0.0
    for w, f in zip(record.weights, record.fisher):
        if f is not None:
            per_channel = w[0].numel()  # weights feeding one output channel
            total += float(f.abs().sum()) * per_channel
    return total


@PROXIES.register("grasp")
def grasp(probe: Probe) -> float:
    # g = dL/dw at the initial weights, from the shared loss pass (the zero-cost code's first pass).
    grad_w = loss_pass(probe).grads
    net = probe.copy()
    layers = weight_layers(net)
    weights = [layer.weight for layer in layers]
    loss = probe.loss_fn(net(probe.inputs), probe.targets)
    grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = sum((gw * gf).sum() for gw, gf in zip(grad_w, grad_f) if gw is not None and gf is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    net.zero_grad(set_to_none=True)
    z.backward()  # w.grad = d(g . grad_f)/dw = H g
    return float(sum((-layer.weight.detach() * layer.weight.grad).sum()
                     for layer in layers if layer.weight.grad is not None))


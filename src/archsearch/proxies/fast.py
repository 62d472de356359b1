"""The fast scoring path: the passes of every requested proxy on one network, with the reference's numbers.

The reference path (``score_all(..., path="reference")``) gives each pass its own deep copy of the network
and its own forward: the loss pass (snip, grad_norm, fisher), grasp's second forward and its double
backward, the input pass (jacob_cov, nwot), synflow's copy, the FLOPs count's copy. None of them changes a
weight, and a batch-statistics forward (training mode) does not read the running statistics it updates, so
this path builds and initialises the network once and runs one forward for all of them:

    forward(x)  ->  dL/dw (create_graph when grasp is asked)  ->  dR/dx, R = sum of outputs  ->  H g
    then synflow on the same network (it is consumed: BatchNorm removed, |theta|, float64)

Each backward asks autograd only for what its proxies read (the Conv2d/Linear weights, or the input), so
no gradient is computed that nobody reads; the gradients asked for meet the same kernels in the same order
as on the reference path, so the scores are bit-identical (``tests/test_proxy_fast.py``). nwot's kernel
K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T is a matrix of integers, computed exactly (see
``agreement_kernel``) with one matrix product per ReLU instead of two float64 ones. The FLOPs baseline
counts shapes only, so it runs on a network built on the meta device (no initialisation) and given zeros. The
cells' 3x3 average pooling runs as shifted additions in the kernel's order (``box_pool.py``).

Where the input pass cannot be restricted to the input without changing nwot (a ReLU that the reference's
full backward reaches but whose input does not depend on the image: a cell node fed by no live edge), that
pass runs as the reference runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from archsearch.proxies import jacobian
from archsearch.proxies.box_pool import use_box_average
from archsearch.proxies.base import PROXIES, LossFn, Probe, weight_layers
from archsearch.proxies.gradients import LossPass
from archsearch.proxies.synflow import synflow_of

LOSS_PROXIES = frozenset({"snip", "grad_norm", "fisher", "grasp"})
INPUT_PROXIES = frozenset({"jacob_cov", "nwot"})
SIZE_PROXIES = frozenset({"params", "flops"})
BUILT_IN = LOSS_PROXIES | INPUT_PROXIES | SIZE_PROXIES | {"synflow"}
#: float32 holds every integer up to 2^24 exactly: a 0/1 Gram matrix of rows this long is exact in float32
EXACT_FLOAT32_LENGTH = 2**24


def agreement_kernel(codes: list[torch.Tensor], batch: int, device) -> np.ndarray:
    """K = sum over codes c of c c^T + (1 - c)(1 - c)^T (c: (B, D) booleans), exactly.

    Per code, with s_i = sum_d c_id:  (c c^T + (1 - c)(1 - c)^T)_ij = D - s_i - s_j + 2 (c c^T)_ij.
    Every term is an integer below 2^53, so K in float64 is exact and equals the reference's sum of
    float64 products bit for bit, whatever the order of the additions; c c^T is exact in float32 while
    D < 2^24 (every partial sum is an integer no larger than D).
    """
    kernel = torch.zeros(batch, batch, dtype=torch.float64, device=device)
    for code in codes:
        length = code.shape[1]
        dtype = torch.float32 if length < EXACT_FLOAT32_LENGTH else torch.float64
        c = code.to(dtype)
        gram = (c @ c.T).to(torch.float64)
        ones = c.sum(1, dtype=torch.float64)
        kernel += length - ones[:, None] - ones[None, :] + 2 * gram
    return kernel.cpu().numpy()


def _reaching(root, target) -> dict:
    """{autograd node reachable from ``root``: whether a path leads from it to ``target``} (one walk)."""
    reaches: dict = {}
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            reaches[node] = node is target or any(reaches.get(n, False) for n, _ in node.next_functions if n is not None)
            continue
        if node in reaches:
            continue
        reaches[node] = False  # placeholder while its children are walked (the graph is acyclic)
        stack.append((node, True))
        stack.extend((n, False) for n, _ in node.next_functions if n is not None and n not in reaches)
    return reaches


class SharedPass:
    """One forward of the batch with the hooks of every pass; the backwards read it in turn."""

    def __init__(self, net: nn.Module, probe: Probe, fisher_wanted: bool, input_wanted: bool):
        self.phase = "forward"
        self.layers = weight_layers(net)
        self.fisher: list[torch.Tensor | None] = [None] * len(self.layers)
        self.codes: dict[int, torch.Tensor] = {}
        self.relu_outputs: dict[int, torch.Tensor] = {}
        self.visited: set[int] = set()
        handles = []
        if fisher_wanted:
            handles += [layer.register_forward_hook(self._fisher_hook(i)) for i, layer in enumerate(self.layers)]
        if input_wanted:
            handles += [m.register_forward_hook(self._relu_hook) for m in net.modules() if isinstance(m, nn.ReLU)]
        self.x = probe.inputs.detach().clone().requires_grad_(True) if input_wanted else probe.inputs
        try:
            self.out = net(self.x)
        finally:
            for handle in handles:
                handle.remove()

    def _fisher_hook(self, index: int):
        # as gradients.loss_pass: g_nk = sum over spatial positions of a o dL/da; Fisher_k = 0.5 mean_n g_nk^2
        def forward_hook(module, inputs, output):
            if not output.requires_grad:
                return
            act = output.detach()

            def on_grad(grad):
                if self.phase != "loss":
                    return  # the other backwards also pass through this activation
                grad = grad.detach()
                g = (act * grad).flatten(2).sum(-1) if act.dim() > 2 else act * grad
                value = g.pow(2).mean(0).mul(0.5)
                self.fisher[index] = value if self.fisher[index] is None else self.fisher[index] + value

            output.register_hook(on_grad)

        return forward_hook

    def _relu_hook(self, module, inputs, output):
        key = id(module)
        self.codes[key] = inputs[0].detach().flatten(1) > 0  # as jacobian.input_pass, kept as booleans
        if output.requires_grad:
            self.relu_outputs[key] = output

            def on_grad(grad):
                if self.phase == "input":
                    self.visited.add(key)

            output.register_hook(on_grad)

    def release(self) -> None:
        """Drop every tensor of the pass. The hooks on the graph's tensors hold this object, which held the
        graph: a cycle through autograd's C++ nodes that Python's collector cannot see, so without this the
        whole retained graph (~200 MB a cell) outlived every scoring."""
        self.out = self.x = None
        self.relu_outputs.clear()
        self.codes.clear()

    def loss_gradients(self, loss: torch.Tensor, create_graph: bool, keep: bool) -> list[torch.Tensor | None]:
        """dL/dW of every Conv2d/Linear weight (None where no gradient reaches it), fisher recorded."""
        wanted = [i for i, layer in enumerate(self.layers) if layer.weight.requires_grad]
        self.phase = "loss"
        grads = torch.autograd.grad(loss, [self.layers[i].weight for i in wanted], create_graph=create_graph,
                                    retain_graph=keep or create_graph, allow_unused=True)
        self.phase = "done"
        out: list[torch.Tensor | None] = [None] * len(self.layers)
        for i, g in zip(wanted, grads):
            out[i] = g
        return out

    def input_restrictable(self) -> bool:
        """Whether the backward of R = sum of outputs, restricted to the input, reaches every ReLU the
        reference's full backward reaches: true unless a ReLU in the graph does not depend on the input."""
        if self.out.grad_fn is None:
            return False
        target = self.x.view_as(self.x).grad_fn.next_functions[0][0]  # the input's gradient accumulator
        reaches = _reaching(self.out.grad_fn, target)
        return all(reaches[r.grad_fn] for r in self.relu_outputs.values() if r.grad_fn in reaches)

    def input_pass(self, keep: bool) -> jacobian.InputPass:
        self.phase = "input"
        (grad_x,) = torch.autograd.grad(self.out, self.x, torch.ones_like(self.out), retain_graph=keep,
                                        allow_unused=True)
        self.phase = "done"
        grad_x = torch.zeros_like(self.x) if grad_x is None else grad_x
        codes = [self.codes[key] for key in self.visited]
        kernel = agreement_kernel(codes, self.x.shape[0], self.x.device)
        return jacobian.InputPass(grad_x.detach().flatten(1).double().cpu().numpy(), kernel)


def grasp_value(layers: list[nn.Module], first: list[torch.Tensor | None]) -> float:
    """grasp from the create_graph gradients ``first`` (as gradients.grasp: z = g . grad_f, H g = dz/dw)."""
    grad_w = [None if g is None else g.detach() for g in first]
    z = sum((gw * gf).sum() for gw, gf in zip(grad_w, first) if gw is not None and gf is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    wanted = [layer.weight for layer in layers if layer.weight.requires_grad]
    hg = torch.autograd.grad(z, wanted, allow_unused=True)
    return float(sum((-w.detach() * h).sum() for w, h in zip(wanted, hg) if h is not None))


def meta_flops(source: Callable[[], nn.Module], input_shape: tuple[int, ...]) -> float:
    """The FLOPs baseline, which reads shapes only: the network is built on the meta device (no
    initialisation, no random draws) and counted on zero-filled CPU storage, whose forward of one image is
    quicker than the meta device's (whose kernels are partly Python). A network that keeps a tensor outside
    its parameters and buffers cannot leave the meta device that way, and is counted there."""
    from archsearch.diagnostics.flops import count_flops

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        net = source()
    shape = (1, *input_shape)
    try:
        counted = net.to_empty(device="cpu")
        with torch.no_grad():
            for tensor in (*counted.parameters(), *counted.buffers()):
                tensor.zero_()
        return float(count_flops(counted.eval(), shape))
    except (RuntimeError, NotImplementedError):
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            net = source()
        return float(count_flops(net.eval(), shape))


def fast_scores(names: Iterable[str], source, net: nn.Module | None, probe_inputs: torch.Tensor,
                probe_targets: torch.Tensor, loss_fn: LossFn | None) -> dict[str, float]:
    """Scores of ``names`` on ``net`` (the initialised network; None when only size baselines are asked and
    ``source`` is a factory), every shared pass run once. ``net`` is consumed."""
    names = list(names)
    wanted = set(names)
    values: dict[str, float] = {}
    if net is None:  # params and flops only: neither reads a weight
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            net = source()
    else:
        use_box_average(net)  # the same bits as the pooling kernel, several times faster (box_pool.py)
    probe = Probe(net.train(), probe_inputs, probe_targets, loss_fn)
    shape = tuple(probe.inputs.shape[1:])
    if "params" in wanted:  # before synflow takes BatchNorm out
        values["params"] = PROXIES.get("params")(probe)
    if "flops" in wanted:
        values["flops"] = meta_flops(source, shape) if callable(source) and not isinstance(source, nn.Module) \
            else PROXIES.get("flops")(probe)
    loss_wanted, input_wanted = bool(wanted & LOSS_PROXIES), bool(wanted & INPUT_PROXIES)
    if loss_wanted or input_wanted:
        all_known = wanted <= BUILT_IN
        shared = SharedPass(net, probe, "fisher" in wanted or not all_known, input_wanted)
        try:
            grasp_wanted = "grasp" in wanted
            if loss_wanted:
                loss = probe.loss_fn(shared.out, probe.targets)
                first = shared.loss_gradients(loss, create_graph=grasp_wanted, keep=input_wanted)
                probe._cache["loss_pass"] = LossPass(
                    weights=[layer.weight.detach() for layer in shared.layers],
                    grads=[None if g is None else g.detach() for g in first], fisher=shared.fisher)
            if input_wanted:
                if shared.input_restrictable():
                    probe._cache["input_pass"] = shared.input_pass(keep=grasp_wanted)
                else:  # the reference's own pass, on its own copy of the (still untouched) network
                    probe._cache["input_pass"] = jacobian.input_pass(probe)
            if grasp_wanted:
                values["grasp"] = grasp_value(shared.layers, first)
        finally:
            shared.release()
    for name in names:
        if name not in values and name != "synflow":
            values[name] = float(PROXIES.get(name)(probe))
    if "synflow" in wanted:  # last: it consumes the network
        values["synflow"] = synflow_of(net, shape, probe.inputs.device)
    return {name: values[name] for name in names}

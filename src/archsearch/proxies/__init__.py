"""Training-free proxies: score an untrained network on one batch (``score``, ``score_all``).

Registered names: snip, grasp, synflow, jacob_cov, grad_norm, fisher, nwot, params, flops. The protocol
is that of the zero-cost proxies (Abdelfattah et al., ICLR 2021): a freshly initialised network
(re-initialised per architecture from a fixed seed), one batch of real data (an all-ones input for
synflow), training mode. See docs/proxies.md.

``path="fast"`` (the default) runs the passes of all the requested proxies on one network and one forward
(``fast.py``); ``path="reference"`` gives every pass its own copy, as the zero-cost code does. Both give
the same scores bit for bit (tests/test_proxy_fast.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from archsearch.errors import ConfigError, did_you_mean, shown
from archsearch.proxies import fast, gradients, jacobian, size, synflow  # noqa: F401  (registers the proxies)
from archsearch.proxies.base import PROXIES, LossFn, Probe
from archsearch.runtime import resolve_device

NetworkSource = nn.Module | Callable[[], nn.Module]
#: how ``score_all`` runs the passes: shared on one network, or each on its own copy (the zero-cost code's way)
PATHS = ("fast", "reference")


def check_path(path: str) -> str:
    if path not in PATHS:
        raise ConfigError(f"unknown proxy scoring path {shown(path)}{did_you_mean(path, PATHS)} "
                          f"(paths: {', '.join(PATHS)})")
    return path


def initialised_network(source: NetworkSource, seed: int = 0, device: torch.device | str | None = None) -> nn.Module:
    """The network at the initial weights drawn from ``seed``.

    A factory is called under ``torch.manual_seed(seed)``; a module is deep-copied and every submodule
    with ``reset_parameters`` re-initialised under the same seed. The global RNG is left as it was.
    """
    device = None if device is None else resolve_device(device)
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if isinstance(source, nn.Module):
            import copy

            net = copy.deepcopy(source)
            for module in net.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        elif callable(source):
            net = source()
            if not isinstance(net, nn.Module):
                raise ConfigError(f"a network factory must return an nn.Module, got {type(net).__name__}")
        else:
            raise ConfigError(f"expected an nn.Module or a zero-argument factory, got {type(source).__name__}")
    return net.to(device) if device is not None else net


def without_auxiliary(space) -> dict:
    """The network options that leave out ``space``'s auxiliary head, where its network has one: proxies score
    a network's logits, and an auxiliary head (DARTS) adds a second output in training mode, the mode they
    score in."""
    from archsearch.settings import keyword_options

    return {"auxiliary": False} if "auxiliary" in keyword_options(space.network) else {}


def score_all(names: Iterable[str], network: NetworkSource, batch_x: torch.Tensor, batch_y: torch.Tensor,
              seed: int = 0, loss_fn: LossFn | None = None, device: torch.device | str | None = None,
              path: str = "fast") -> dict[str, float]:
    """Scores of several proxies on one architecture, sharing the passes they have in common."""
    names = list(names)
    functions = {name: PROXIES.get(name) for name in names}  # unknown names fail before any work
    check_path(path)
    device = resolve_device(device) if device is not None else batch_x.device
    sizes_only = path == "fast" and set(names) <= fast.SIZE_PROXIES and not isinstance(network, nn.Module)
    net = None if sizes_only else initialised_network(network, seed, device)
    inputs, targets = batch_x.to(device), batch_y.to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # any randomness inside a forward pass (none in the built-in spaces)
        if path == "fast":
            return fast.fast_scores(names, network, net, inputs, targets, loss_fn)
        probe = Probe(net, inputs, targets, loss_fn)
        return {name: float(fn(probe)) for name, fn in functions.items()}


def score(name: str, network: NetworkSource, batch_x: torch.Tensor, batch_y: torch.Tensor, seed: int = 0,
          loss_fn: LossFn | None = None, device: torch.device | str | None = None, path: str = "fast") -> float:
    """One proxy's score of one architecture: ``network`` is a module or a factory of one."""
    return score_all([name], network, batch_x, batch_y, seed, loss_fn, device, path)[name]



__all__ = ["PATHS", "PROXIES", "Probe", "check_path", "score", "score_all", "initialised_network", "without_auxiliary"]

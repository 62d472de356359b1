"""XNAS presets (Nayman, Noy, Ridnik, Friedman, Jin & Zelnik-Manor, NeurIPS 2019).

XNAS = the DARTS loop (first order) + the ``experts`` relaxation (softmax over alive ops, experts'
losses dL/dp) + ExpGrad with wipeout + online-to-batch selection.
"""

from __future__ import annotations

import torch

from archsearch.errors import ConfigError
from archsearch.optim.expgrad import ExpGrad
from archsearch.search import selectors_experts  # noqa: F401  (registers "online-to-batch")
from archsearch.search.components import ARCH_OPTIMIZERS
from archsearch.search.methods import Method, register_method
from archsearch.spaces import get_space

#: L, the clip bound of the experts' losses dL/dp. Our choice (the paper states the bound, not a
#: value): 1.0 bounds the per-step dL/dp we measured on NB201 supernets by a wide margin, so the
#: clip rarely binds and the regret bound holds as stated.
DEFAULT_GRAD_BOUND = 1.0


@ARCH_OPTIMIZERS.register("expgrad")
def build_expgrad(params, config, dataset_size=None) -> ExpGrad:
    """ExpGrad over the alphas. ``arch_options``: ``lr`` (None: eta* from the regret bound for the
    planned rounds, set by the loop), ``grad_bound`` (L), ``wipeout``, ``remove_ops`` (ops removed from
    the start; default ["none"]: the zero op's loss dL/dp is identically 0, so it is no expert, and a
    DARTS genotype cannot express an edge whose only survivor is the zero op)."""
    options = dict(config.arch_options)
    remove_ops = options.pop("remove_ops", ["none"])
    ops = get_space(config.space).ops
    unknown = [op for op in remove_ops if op not in ops]
    if unknown:
        raise ConfigError(f"remove_ops names ops the {config.space} space lacks: {', '.join(unknown)} "
                          f"(ops: {', '.join(ops)})")
    params = list(params)
    removed = [torch.tensor([op in remove_ops for op in ops]) for _ in params]
    allowed = {"lr", "grad_bound", "wipeout", "rounds"}
    if set(options) - allowed:
        raise ConfigError(f"unknown expgrad option(s) {', '.join(sorted(set(options) - allowed))} "
                          f"(known: {', '.join(sorted(allowed | {'remove_ops'}))})")
    options.setdefault("grad_bound", DEFAULT_GRAD_BOUND)
    return ExpGrad(params, removed=removed, **options)


register_method(Method(
    name="xnas",
    summary="XNAS: ops as experts, exponentiated gradient with wipeout, online-to-batch selection",
    paper="Nayman et al., XNAS: Neural Architecture Search with Expert Advice, NeurIPS 2019",
    # First order, as XNAS (no unrolled step); the weight side keeps the DARTS/NB201 defaults.
    settings={"relaxation": "experts", "arch_optimizer": "expgrad", "selector": "online-to-batch",
              "order": 1, "arch_options": {"grad_bound": DEFAULT_GRAD_BOUND, "wipeout": True}},
))

"""DARTS presets (Liu, Simonyan & Yang, ICLR 2019)."""

from archsearch.search.methods.base import Method, register_method

# DARTS (Liu, Simonyan, Yang, ICLR 2019). Values of quark0/darts train_search.py and of the
# NAS-Bench-201 protocol; they are SearchConfig's defaults, so the presets only name the order.
register_method(Method(
    name="darts",
    summary="DARTS, first order: softmax relaxation, Adam on alpha, argmax selection",
    paper="Liu, Simonyan & Yang, DARTS: Differentiable Architecture Search, ICLR 2019",
    settings={"relaxation": "softmax", "arch_optimizer": "adam", "selector": "argmax", "order": 1},
))
register_method(Method(
    name="darts2",
    summary="DARTS, second order: unrolled step w' = w - xi grad_w L_train, exact Hessian-vector product (hvp)",
    paper="Liu, Simonyan & Yang, DARTS: Differentiable Architecture Search, ICLR 2019 (eq. 7-8)",
    settings={"relaxation": "softmax", "arch_optimizer": "adam", "selector": "argmax", "order": 2},
))

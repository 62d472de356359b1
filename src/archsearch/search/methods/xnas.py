"""XNAS presets (Nayman, Noy, Ridnik, Friedman, Jin & Zelnik-Manor, NeurIPS 2019).

XNAS = the DARTS loop (first order) + the ``experts`` relaxation (softmax over alive ops, experts'
losses dL/dp) + ExpGrad with wipeout (``expgrad``, archsearch.optim.arch_optimizers) + online-to-batch
selection (search/selectors/online_to_batch.py).
"""

from archsearch.search.methods.base import Method, register_method

register_method(Method(
    name="xnas",
    summary="XNAS: ops as experts, exponentiated gradient with wipeout, online-to-batch selection",
    paper="Nayman et al., XNAS: Neural Architecture Search with Expert Advice, NeurIPS 2019",
    # First order, as XNAS (no unrolled step); the weight side keeps the DARTS/NB201 defaults.
    # step_order: XNAS Alg. 1 updates the weights w first, then the experts from the validation loss's
    # gradient at the new w (the loop's generic weights-first order).
    # grad_bound: L = 1.0, optim.arch_optimizers.DEFAULT_GRAD_BOUND (why that value: there).
    settings={"relaxation": "experts", "arch_optimizer": "expgrad", "selector": "online-to-batch",
              "order": 1, "step_order": "weights-first", "arch_options": {"grad_bound": 1.0, "wipeout": True}},
))

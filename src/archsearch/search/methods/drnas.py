"""DrNAS presets (Chen, Wang, Cheng, Tang & Hsieh, "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021):
DARTS loop + the Dirichlet relaxation (relax/dirichlet.py) + Adam + argmax, in the reference's two
regularisation modes.

Values of the NAS-Bench-201 search of the authors' code (xiangning-chen/DrNAS ``201-space/train_search.py``
defaults, without the progressive partial-channel variant): 100 epochs, batch 64, SGD lr 0.025 cosine to
0.001, momentum 0.9, weight decay 3e-4, grad clip 5; Adam(3e-4, betas (0.5, 0.999)) on alpha; first order.

The reference regularises the concentrations in one of two ways, never both (``--reg_type``, scale
``--reg_scale`` 1e-3, ``201-space/train_search.py:57-60``, ``DARTS-space/train_search.py:45-46``):

    kl:  loss += reg_scale * sum KL(Dir(beta) || Dir(1))   (201-space/search_model.py:62-71)
         and Adam's weight decay is 0                        (architect.py:19-20)
    l2:  Adam(weight_decay = reg_scale) on alpha, no KL term (architect.py:17-18; _loss adds the KL only
         for 'kl', 201-space/search_model.py:62, DARTS-space/model_search.py:196)

(``201-space/train_search.py:52`` also declares ``--arch_weight_decay 1e-3``; it only names the run
directory, ``:71-72``, and never reaches the optimizer.) ``drnas`` is the paper's KL form; ``drnas-l2`` is
the released code's default ``--reg_type l2``.
"""

from archsearch.search.methods.base import Method, register_method

_PAPER = "Chen, Wang, Cheng, Tang & Hsieh, DrNAS: Dirichlet Neural Architecture Search, ICLR 2021"
_SEARCH = {"relaxation": "dirichlet", "arch_optimizer": "adam", "selector": "argmax", "order": 1,
           "arch_lr": 3e-4, "arch_betas": (0.5, 0.999),
           "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_weight_decay": 3e-4,
           "grad_clip": 5.0, "batch_size": 64, "epochs": 100}

register_method(Method(
    name="drnas",
    summary="DrNAS: op weights ~ Dirichlet(elu(alpha) + 1) with pathwise gradients, KL to a Dir(1) prior",
    paper=_PAPER,
    # --reg_type kl --reg_scale 1e-3: the KL term carries the scale, Adam has no weight decay
    settings={**_SEARCH, "relaxation_options": {"kl_weight": 1e-3, "prior": 1.0}, "arch_weight_decay": 0.0},
))

register_method(Method(
    name="drnas-l2",
    summary="DrNAS as released (--reg_type l2): Dirichlet op weights, Adam weight decay 1e-3 on alpha, no KL",
    paper=_PAPER,
    # --reg_type l2 --reg_scale 1e-3: Adam's weight decay carries the scale, no KL term
    settings={**_SEARCH, "relaxation_options": {"kl_weight": 0.0, "prior": 1.0}, "arch_weight_decay": 1e-3},
))

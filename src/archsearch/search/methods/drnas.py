"""DrNAS preset (Chen, Wang, Cheng, Tang & Hsieh, "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021):
DARTS loop + the Dirichlet relaxation (relax/dirichlet.py) with its KL term + Adam + argmax.

Values of the NAS-Bench-201 search of the authors' code (xiangning-chen/DrNAS ``201-space/train_search.py``
defaults, without the progressive partial-channel variant): 100 epochs, batch 64, SGD lr 0.025 cosine to
0.001, momentum 0.9, weight decay 3e-4, grad clip 5; Adam(3e-4, betas (0.5, 0.999), weight decay 1e-3) on
alpha; KL towards Dir(1) with scale 1e-3 (``--reg_type kl --reg_scale 1e-3``); first order.
"""

from archsearch.search.methods.base import Method, register_method

register_method(Method(
    name="drnas",
    summary="DrNAS: op weights ~ Dirichlet(elu(alpha) + 1) with pathwise gradients, KL to a Dir(1) prior",
    paper="Chen, Wang, Cheng, Tang & Hsieh, DrNAS: Dirichlet Neural Architecture Search, ICLR 2021",
    settings={"relaxation": "dirichlet", "relaxation_options": {"kl_weight": 1e-3, "prior": 1.0},
              "arch_optimizer": "adam", "selector": "argmax", "order": 1,
              "arch_lr": 3e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3,
              "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_weight_decay": 3e-4,
              "grad_clip": 5.0, "batch_size": 64, "epochs": 100},
))

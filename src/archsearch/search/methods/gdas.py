"""GDAS preset (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours", CVPR 2019):
DARTS loop + the hard Gumbel-softmax relaxation (relax/gumbel.py, ``gumbel_hard``) + Adam + argmax.

Values of the NAS-Bench-201 protocol for GDAS (D-X-Y/AutoDL-Projects ``scripts-search/NAS-Bench-201-algos/
GDAS.sh`` and ``configs/nas-benchmark/algos/GDAS.config``): SGD lr 0.025 with Nesterov momentum 0.9 and
weight decay 5e-4, cosine to 0.001, batch 64, grad clip 5; Adam(3e-4, betas (0.5, 0.999), weight decay
1e-3) on alpha; tau from 10 to 0.1 linearly per epoch; first order. Epochs: 250, the NB201 protocol's
figure for GDAS (the GDAS.config we could read, at commit a84f48, says 240 with no warm-up; see docs/gdas.md).
"""

from archsearch.search.methods.base import Method, register_method

register_method(Method(
    name="gdas",
    summary="GDAS: one Gumbel-sampled op per edge (straight-through), tau 10 -> 0.1, NB201 protocol",
    paper="Dong & Yang, Searching for A Robust Neural Architecture in Four GPU Hours, CVPR 2019",
    settings={"relaxation": "gumbel_hard", "relaxation_options": {"tau_max": 10.0, "tau_min": 0.1},
              "arch_optimizer": "adam", "selector": "argmax", "order": 1,
              "arch_lr": 3e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3,
              "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_nesterov": True, "w_weight_decay": 5e-4,
              "grad_clip": 5.0, "batch_size": 64, "epochs": 250},
))

"""SNAS preset (Xie, Zheng, Liu & Lin, "SNAS: Stochastic Neural Architecture Search", ICLR 2019):
DARTS loop + the soft concrete relaxation (relax/gumbel.py, ``gumbel``) + Adam + argmax.

Values of the authors' release (SNAS-Series ``SNAS/train_search.py`` and its README search command):
150 epochs, batch 64, SGD lr 0.025 cosine to 0.001, momentum 0.9, weight decay 3e-4, grad clip 5;
Adam(3e-4, betas (0.5, 0.999), weight decay 1e-3) on alpha (the script's distributed branch; its
single-GPU branch uses plain SGD at 3e-4); tau from 1 to 0.03 linearly. The resource constraint is off
here; ``relaxation_options: {resource_weight: 0.01}`` turns it on with the README's lambda and log penalty.
Differences, stated in docs/snas.md: SNAS updates weights and alpha on the same batch with one loss and
uses drop-path 0.3 during search; this preset keeps the bilevel loop and no drop-path.
"""

from archsearch.search.methods.base import Method, register_method

register_method(Method(
    name="snas",
    summary="SNAS: soft Gumbel-softmax (concrete) sample per forward, tau 1 -> 0.03; resource constraint optional",
    paper="Xie, Zheng, Liu & Lin, SNAS: Stochastic Neural Architecture Search, ICLR 2019",
    settings={"relaxation": "gumbel", "relaxation_options": {"tau_max": 1.0, "tau_min": 0.03},
              "arch_optimizer": "adam", "selector": "argmax", "order": 1,
              "arch_lr": 3e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3,
              "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_weight_decay": 3e-4,
              "grad_clip": 5.0, "batch_size": 64, "epochs": 150},
))

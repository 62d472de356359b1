"""P-DARTS preset (Chen, Xie, Wu & Tian, "Progressive Differentiable Architecture Search: Bridging the
Depth Gap between Search and Evaluation", ICCV 2019), on the DARTS space.

P-DARTS = three DARTS searches (search/drivers/progressive.py) on supernets of 5, 11 and 17 cells holding 8, 5
and 3 candidate ops per edge, with dropout on skip connections, then at most M = 2 skip connections in
the normal cell (selector ``max-skips``). See docs/pdarts.md.
"""

from archsearch.search.methods.base import Method, register_method

# chenxin061/pdarts train_search.py: 25 epochs per stage, the first 10 train the weights only
# (eps_no_archs); batch 96; SGD lr 0.025 cosine to 0.0, momentum 0.9, weight decay 3e-4, grad clip 5;
# Adam(6e-4, betas (0.5, 0.999), weight decay 1e-3), first order; C = 16, layers 5 + (0, 6, 12);
# ops kept 8 -> 5 -> 3 (num_to_keep / num_to_drop); skip-dropout decay factor 0.2 (scale_factor).
# Initial skip-dropout rates 0.0, 0.4, 0.7: the paper's CIFAR-10 values (Sec. 4.2; the README's command
# uses 0.1, 0.4, 0.7). M = 2 skip connections (paper, Sec. 3.3).
register_method(Method(
    name="pdarts",
    summary="P-DARTS: 3 stages of 5/11/17 cells with 8/5/3 ops per edge, skip dropout, at most 2 skips",
    paper="Chen, Xie, Wu & Tian, Progressive Differentiable Architecture Search: Bridging the Depth Gap "
          "between Search and Evaluation, ICCV 2019",
    settings={"space": "darts", "relaxation": "softmax", "arch_optimizer": "adam", "order": 1,
              "selector": "max-skips", "selector_options": {"max_skips": 2},
              "arch_lr": 6e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3,
              "w_lr": 0.025, "w_lr_min": 0.0, "w_momentum": 0.9, "w_weight_decay": 3e-4, "grad_clip": 5.0,
              "batch_size": 96, "epochs": 25, "arch_warmup_epochs": 10, "C": 16, "layers": 5,
              "driver": "progressive",
              "driver_options": {"add_layers": [0, 6, 12], "num_ops": [8, 5, 3], "skip_dropout": [0.0, 0.4, 0.7],
                                 "dropout_decay": 0.2}},
))

"""FairDARTS presets (Chu, Zhou, Zhang & Li, ECCV 2020), with and without DSCD (Bodin, Tomasi & Dai,
"Making Differentiable Architecture Search less local", ICLR 2021 NAS workshop).

FairDARTS = DARTS loop + sigmoid relaxation with the zero-one loss + Adam + threshold selector.
FairDARTS+DSCD = the same with DSCD's global coordinate steps around the Adam steps
(``dscd-adam``, archsearch.optim.arch_optimizers; the selector: search/selectors/threshold.py).
"""

from archsearch.search.methods.base import Method, register_method

# xiaomi-automl/FairDARTS train_search.py and its README command: Adam(lr 3e-3, betas (0.9, 0.999),
# weight decay 1e-3) on alpha, SGD lr 0.005 (cosine to 0.001) on the weights, batch 128, 50 epochs,
# w01 = 10 from the first step; first order. Threshold 0.8 as the paper (Sec. 4; the code's default is 0.85).
# The genotype: threshold_sparse, the code's default --parse_method (train_search.py:40, utils.py:161-188).
# No `none` op: the reference's PRIMITIVES (genotypes.py:8-16) are the 7 real ops, so alpha has no column
# for it and the zero-one loss averages over real ops only. On NAS-Bench-201 (no reference code) `none` is
# left out as well: under the sigmoid its weight multiplies a zero tensor, and a `none` edge of the benchmark
# is one whose 4 real ops all stay under the threshold. supernet_options={exclude_ops: []} keeps the column.
_FAIRDARTS = {"relaxation": "sigmoid", "relaxation_options": {"w01": 10.0}, "arch_optimizer": "adam",
              "arch_lr": 3e-3, "arch_betas": (0.9, 0.999), "arch_weight_decay": 1e-3,
              "w_lr": 0.005, "w_lr_min": 0.001, "batch_size": 128, "epochs": 50, "order": 1,
              "supernet_options": {"exclude_ops": ["none"]},
              "selector": "threshold", "selector_options": {"threshold": 0.8, "max_inputs": 2, "mode": "sparse"}}

register_method(Method(
    name="fairdarts",
    summary="FairDARTS: independent sigmoid per op, zero-one loss (w01=10), threshold selection (0.8)",
    paper="Chu, Zhou, Zhang & Li, Fair DARTS: Eliminating Unfair Advantages in Differentiable "
          "Architecture Search, ECCV 2020",
    settings=_FAIRDARTS,
))
register_method(Method(
    name="fairdarts-dscd",
    summary="FairDARTS with DSCD: global Beta-proposal coordinate steps around Adam",
    paper="Bodin, Tomasi & Dai, Making Differentiable Architecture Search less local, ICLR 2021 NAS workshop",
    # DSCD constants the paper leaves out (our choices, see archsearch.optim.dscd): a=3, K=10, n=10;
    # switching by the paper's rule (DSCD's default; arch_options switch=window for our earlier one).
    settings={**_FAIRDARTS, "arch_optimizer": "dscd-adam",
              "arch_options": {"bound": 3.0, "memory": 10, "patience": 10}},
))

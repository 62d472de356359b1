"""One-shot presets that train the shared weights on uniformly drawn paths: RSPS and SETN.

Both follow the NAS-Bench-201 protocol of D-X-Y/AutoDL-Projects. Weights (``configs/nas-benchmark/algos/
RANDOM.config`` and ``SETN.config``, identical): SGD lr 0.025 (line 3), cosine (line 2) to 0.001 (line 4),
250 epochs (line 5), Nesterov (line 10) momentum 0.9 (line 9), weight decay 5e-4 (line 8), batch 64 (line 12).
The supernet: C=16, N=5 (``RANDOM-NAS.sh:21-22``, ``SETN.sh:21-22``), our defaults. Selection: 100
candidates (``--select_num 100``, ``RANDOM-NAS.sh:43``, ``SETN.sh:44``), each scored by its shared-weight
accuracy on one batch of 512 (``test_batch_size``, line 13) of the search-valid data
(search/selectors/shared_weights.py).

RSPS (Li & Talwalkar, UAI 2019; ``exps/NAS-Bench-201-algos/RANDOM-NAS.py``): per batch one uniformly drawn
architecture's path is trained (``:44-50``), gradients clipped at 5 (``:49``); no architecture parameters
(``arch_optimizer: none``); the final cell is the best of 100 uniform candidates (``:107-131``, ``:320``).

SETN (Dong & Yang, ICCV 2019; ``exps/NAS-Bench-201-algos/SETN.py``): per batch a weight step on a uniformly
drawn path (``:54-61``; no gradient clipping there), then an architecture step on the softmax mixture
(``:71-76``, "joint" mode) by Adam(3e-4, betas (0.5, 0.999), weight decay 1e-3) (``:231-236``,
``SETN.sh:43``), first order, taken at the updated weights (weights-first). The final cell: the 100
genotypes most probable under softmax(alpha), ranked by shared-weight accuracy (``:117-140``,
``search_model_setn.py:143-150`` ``return_topK``).
"""

from archsearch.search.methods.base import Method, register_method

#: the NB201 weight recipe both share (RANDOM.config and SETN.config)
_NB201_WEIGHTS = {"w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_nesterov": True, "w_weight_decay": 5e-4,
                  "batch_size": 64, "epochs": 250}
_SELECTION = {"n": 100, "batch_size": 512, "batches": 1}

register_method(Method(
    name="rsps",
    summary="RSPS: one uniformly drawn path trained per batch, no architecture learning, best of 100 uniform "
            "candidates by shared-weight accuracy",
    paper="Li & Talwalkar, Random Search and Reproducibility for Neural Architecture Search, UAI 2019",
    settings={"relaxation": "uniform_path", "arch_optimizer": "none", "selector": "shared-weights",
              "selector_options": {"candidates": "uniform", **_SELECTION}, "order": 1, "grad_clip": 5.0,
              # no architecture parameters are learned: a Hessian with respect to alpha would say nothing
              "hessian_every": 0, **_NB201_WEIGHTS},
))
register_method(Method(
    name="setn",
    summary="SETN: uniform path per weight step, softmax mixture per arch step (Adam), best of the 100 most "
            "probable cells by shared-weight accuracy",
    paper="Dong & Yang, One-Shot Neural Architecture Search via Self-Evaluated Template Network, ICCV 2019",
    settings={"relaxation": "uniform_path", "arch_optimizer": "adam", "selector": "shared-weights",
              "selector_options": {"candidates": "top", **_SELECTION}, "order": 1, "step_order": "weights-first",
              "arch_lr": 3e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3, "grad_clip": None,
              **_NB201_WEIGHTS},
))

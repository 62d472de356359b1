"""ENAS preset (Pham, Guan, Zoph, Le & Dean, "Efficient Neural Architecture Search via Parameter Sharing",
ICML 2018), with the values of the NAS-Bench-201 authors' runs (D-X-Y/AutoDL-Projects):

- the controller relaxation (relax/controller.py): LSTM 32 x 2, temperature 5, tanh constant 2.5
  (xautodl/models/cell_searchs/search_model_enas_utils.py:17-20); entropy weight 1e-4, baseline decay 0.99,
  20 samples per controller step (scripts-search/NAS-Bench-201-algos/ENAS.sh:43-46), trained by REINFORCE
  (``arch_gradient`` reinforce, search/estimators.py);
- 50 controller steps after each epoch of shared-weight training (ENAS.sh:45, ``arch_steps``; ENAS.py:387-422);
- the controller's Adam: lr 1e-3, betas (0, 0.999), eps 1e-3, no weight decay
  (configs/nas-benchmark/algos/ENAS.config:12-14);
- the shared weights: SGD lr 0.05, Nesterov momentum 0.9, weight decay 2.5e-4, cosine to 5e-4, batch 128,
  250 epochs (ENAS.config:2-11, :16), gradient clipped to norm 5 (ENAS.py:63);
- the final cell: the best of 100 controller samples by shared-weight accuracy, each on one search-valid
  batch of 128 (ENAS.sh:47, ENAS.py:502, :203-228; the ``shared-weights`` selector, candidates ``sample``).

Differences: the reference steps its cosine per iteration, we per epoch (as every preset here); its final
candidates are drawn with replacement and scored on augmented batches (its valid loader takes the train
transforms, ENAS.py:281-284), the selector's are distinct and unaugmented; the Hessian diagnostic is off,
for the architecture has no alpha (hessian_every 0).
"""

from archsearch.search.methods.base import Method, register_method

register_method(Method(
    name="enas",
    summary="ENAS: an LSTM controller trained by REINFORCE on shared-weight accuracy, NB201 protocol",
    paper="Pham, Guan, Zoph, Le & Dean, Efficient Neural Architecture Search via Parameter Sharing, ICML 2018",
    settings={"relaxation": "controller",
              "relaxation_options": {"hidden": 32, "layers": 2, "temperature": 5.0, "tanh_constant": 2.5,
                                     "entropy_weight": 1e-4, "baseline_decay": 0.99, "aggregate": 20},
              "arch_gradient": "reinforce", "arch_steps": 50, "order": 1,
              "arch_optimizer": "adam", "arch_lr": 1e-3, "arch_betas": (0.0, 0.999), "arch_weight_decay": 0.0,
              "arch_options": {"eps": 1e-3},
              "selector": "shared-weights",
              "selector_options": {"candidates": "sample", "n": 100, "batch_size": 128, "batches": 1},
              "w_lr": 0.05, "w_lr_min": 5e-4, "w_momentum": 0.9, "w_nesterov": True, "w_weight_decay": 2.5e-4,
              "grad_clip": 5.0, "batch_size": 128, "epochs": 250, "hessian_every": 0},
))

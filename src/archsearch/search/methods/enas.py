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

# ENAS' micro search (Pham et al., Sec. 2.3 and 3.2), as the authors' script runs it on CIFAR-10:
# melodyguan/enas scripts/cifar10_micro_search.sh (4bcfd73; line numbers below) with src/cifar10/main.py's
# defaults for what it leaves out. Its space is nasnet-enas (ENAS' supernet, spaces/nasnet_supernet.py);
# `--space darts` runs the same search on the DARTS space (C and layers as DARTS' search: 8 cells).
register_method(Method(
    name="enas-micro",
    summary="ENAS' micro search: LSTM controller, REINFORCE, shared weights, melodyguan/enas micro_search",
    paper="Pham, Guan, Zoph, Le & Dean, Efficient Neural Architecture Search via Parameter Sharing, ICML 2018",
    settings={"space": "nasnet-enas", "relaxation": "controller",
              # controller: main.py:153-154 (lstm_size 64, 1 layer); sh:36 (tanh constant 1.10); no temperature
              # (main.py:75, not set); sh:30 (entropy weight 1e-4); main.py:72 (bl_dec 0.99); sh:33
              # (num_aggregate 10); micro_controller.py:86 (U(-0.1, 0.1)), :231-248 (the baseline rule);
              # no gradient clipping (MicroController's clip_mode None, main.py passes none)
              "relaxation_options": {"hidden": 64, "layers": 1, "temperature": None, "tanh_constant": 1.10,
                                     "entropy_weight": 1e-4, "baseline_decay": 0.99, "aggregate": 10,
                                     "grad_clip": None, "rule": "enas"},
              # sh:34 (--controller_train_steps=30), sh:31 (after every epoch)
              "arch_gradient": "reinforce", "arch_steps": 30, "order": 1,
              # sh:35 (lr 0.0035); src/utils.py:218 (Adam, beta1 0, epsilon 1e-3); main.py:71 (l2 0)
              "arch_optimizer": "adam", "arch_lr": 0.0035, "arch_betas": (0.0, 0.999), "arch_weight_decay": 0.0,
              "arch_options": {"eps": 1e-3},
              # main.py:308-309: each epoch prints 10 controller samples with their accuracy on one
              # valid batch of 160 (build_valid_rl); the paper takes the best of "several" (Sec. 2.3)
              "selector": "shared-weights",
              "selector_options": {"candidates": "sample", "n": 10, "batch_size": 160, "batches": 1},
              # child: sh:24-25 (lr 0.05 cosine to 5e-4; the reference restarts it, T_0 10, T_mul 2);
              # src/utils.py:213 (momentum 0.9, Nesterov); sh:18 (l2 1e-4 on sum w^2: a decay of 2e-4 of w);
              # sh:11-12 (batch 160, 150 epochs); sh:16-17 (6 layers: N = 6 // 3 = 2 per stage, F = 20)
              "w_lr": 0.05, "w_lr_min": 5e-4, "w_momentum": 0.9, "w_nesterov": True, "w_weight_decay": 2e-4,
              "batch_size": 160, "epochs": 150, "C": 20, "N": 2, "layers": 8,
              # main.py:127-128 ask for clipping at norm 5, but src/utils.py:149 appends the unclipped
              # gradient: the reference trains without clipping, and so does this preset
              "grad_clip": None, "hessian_every": 0},
))

# ENAS on its own macro space (spaces/enas_macro.py) with the macro controller (relax/macro_controller.py),
# the values of melodyguan/enas scripts/cifar10_macro_search.sh and src/cifar10/main.py:
# - child: 12 layers of 36 channels (search.sh:16-17), batch 128 (:11), 310 epochs (:12), dropout 0.1
#   (keep_prob 0.9, :21); SGD with Nesterov momentum 0.9 (src/utils.py:212-214), lr 0.05 cosine to 5e-4
#   (:23-25); the l2 term 2.5e-4 sum w^2 added to the loss (:18, utils.py:118-123) is weight decay 5e-4 on
#   the gradient; no gradient clipping (utils.py:141-150 computes clipped gradients and applies the
#   unclipped ones);
# - controller: one LSTM layer of 64 (main.py:153-154), no temperature (main.py:75, not set by the script),
#   tanh constant 1.5 (:36), entropy weight 1e-4 (:30), baseline decay 0.99 (main.py:72), 20 samples per
#   step (:33), 50 steps after every epoch (:31, :34; main.py:276-280), skip target 0.4 and weight 0.8
#   (:38-39); the baseline and reward of general_controller.py:270-292 (rule enas); Adam lr 1e-3 (:35),
#   beta1 0, eps 1e-3 (utils.py:217-219), no l2 (main.py:71) and no clipping (general_controller.py:32);
# - the final architecture: the best of 10 controller samples by shared-weight accuracy on one validation
#   batch each (main.py:308-327 prints ten such per epoch; the paper's "Deriving Architectures", Sec. 2.2).
# Differences: the reference's cosine restarts (T_0 10, T_mul 2: 10 + 20 + 40 + 80 + 160 = 310 epochs,
# :26-27, utils.py:154-183); ours anneals once over the run.
register_method(Method(
    name="enas-macro",
    summary="ENAS on its macro space: LSTM controller with skip attention, REINFORCE, shared weights",
    paper="Pham, Guan, Zoph, Le & Dean, Efficient Neural Architecture Search via Parameter Sharing, ICML 2018",
    settings={"space": "enas-macro", "C": 36, "layers": 12,
              "relaxation": "controller",
              "relaxation_options": {"kind": "macro", "hidden": 64, "layers": 1, "temperature": None,
                                     "tanh_constant": 1.5, "entropy_weight": 1e-4, "baseline_decay": 0.99,
                                     "aggregate": 20, "grad_clip": None, "rule": "enas", "skip_target": 0.4,
                                     "skip_weight": 0.8},
              "supernet_options": {"dropout": 0.1},
              "arch_gradient": "reinforce", "arch_steps": 50, "order": 1,
              "arch_optimizer": "adam", "arch_lr": 1e-3, "arch_betas": (0.0, 0.999), "arch_weight_decay": 0.0,
              "arch_options": {"eps": 1e-3},
              "selector": "shared-weights",
              "selector_options": {"candidates": "sample", "n": 10, "batch_size": 128, "batches": 1},
              "w_lr": 0.05, "w_lr_min": 5e-4, "w_momentum": 0.9, "w_nesterov": True, "w_weight_decay": 5e-4,
              "grad_clip": None, "batch_size": 128, "epochs": 310, "hessian_every": 0},
))

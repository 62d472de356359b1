"""Search settings that come with a space rather than a method: a space searched on other data than images
has its own training recipe, which applies over any method's (search/config.py's ``layered_config``: defaults,
method, these, file, overrides). A method still chooses the relaxation, the architecture optimizer, the
selector and the order.
"""

#: DARTS' recurrent cell on Penn Treebank, quark0/darts rnn/train_search.py (line numbers there) and
#: rnn/architect.py; the network's sizes and dropouts are the supernet's defaults (spaces/darts_rnn_supernet.py),
#: bptt and the activation regularisers the task's (search/lm_task.py)
DARTS_RNN = {
    "data": "ptb",
    "epochs": 50,  # :33
    "batch_size": 256,  # :35
    "w_lr": 20.0,  # :29, plain SGD (:268); no schedule in the search: the cosine's floor is its start
    "w_lr_min": 20.0,
    "w_momentum": 0.0,
    "w_nesterov": False,
    "w_weight_decay": 5e-7,  # :63 (wdecay)
    "grad_clip": 0.25,  # :31, :236; the unrolled step clips too (architect.py:36, :68)
    "arch_lr": 3e-3,  # :79
    "arch_weight_decay": 1e-3,  # :77
    "arch_betas": (0.9, 0.999),  # architect.py:30: Adam's defaults (the CNN search's are (0.5, 0.999))
    "hessian_every": 0,  # the reference computes no Hessian; hessian_every N turns ours on (first order)
}

#: ENAS' controller on the DARTS recurrent cell: melodyguan/enas scripts/ptb_search.sh (4bcfd73; line numbers
#: there) and src/ptb/main.py, over the DARTS_RNN recipe. Mapped: the controller (main.py:145-146: LSTM of 100,
#: one layer; sh:36-37 tanh constant 2.5, temperature 5; sh:38 entropy weight 1e-3; main.py:72 baseline decay
#: 0.99, the baseline and the stopped entropy of ptb_enas_controller.py:183-194 = rule "enas"; sh:35 10 samples
#: per step; no clipping: clip_mode not passed, main.py:147-160), its Adam (sh:32 lr 1e-3; src/utils.py Adam
#: beta1 0, eps 1e-3; l2 0, main.py:71), 100 controller steps after every epoch (sh:31, :34), the reward
#: 80 / ppl (the task, ptb_enas_controller.py:181). Not mapped: the child. ENAS trains an RHN-style cell of
#: depth 12 and width 720 on a summed-over-time loss (sh:13-28, ptb_enas_child.py:189); the supernet here is
#: DARTS' search cell, so the weights keep DARTS' recipe (DARTS_RNN, batch 256, 50 epochs). The final cell:
#: the best of 100 controller samples by shared-weight valid perplexity (our choice: the reference prints
#: samples and their perplexity, the paper takes the best of several), each on one window of 64 columns.
ENAS_PTB = {
    "relaxation_options": {"hidden": 100, "layers": 1, "temperature": 5.0, "tanh_constant": 2.5,
                           "entropy_weight": 1e-3, "baseline_decay": 0.99, "aggregate": 10, "grad_clip": None,
                           "rule": "enas"},
    "arch_steps": 100, "arch_lr": 1e-3, "arch_betas": (0.0, 0.999), "arch_weight_decay": 0.0,
    "arch_options": {"eps": 1e-3},
    "selector_options": {"candidates": "sample", "n": 100, "batch_size": 64, "batches": 1},
}

SPACE_SETTINGS = {"darts-rnn": DARTS_RNN}
#: a method's settings on a space with its own task, over SPACE_SETTINGS
METHOD_SPACE_SETTINGS = {("enas", "darts-rnn"): ENAS_PTB}


def space_settings(method: str, space: str) -> dict:
    """The space's recipe, then the method's on that space (a new dict)."""
    return {**SPACE_SETTINGS.get(space, {}), **METHOD_SPACE_SETTINGS.get((method, space), {})}

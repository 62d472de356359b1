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
    "hessian_every": 0,  # the Hessian diagnostic is for image tasks only
}

SPACE_SETTINGS = {"darts-rnn": DARTS_RNN}

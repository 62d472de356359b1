"""PC-DARTS preset (Xu, Xie, Zhang, Chen, Qi, Tian & Xiong, "PC-DARTS: Partial Channel Connections for
Memory-Efficient Architecture Search", ICLR 2020).

PC-DARTS = DARTS loop + softmax relaxation + Adam + a supernet with partial channel connections (K = 4,
channel shuffle) and edge normalisation (betas, extra architecture parameters); selection ranks edges by
softmax(beta) x op weight (Supernet.selection_weights). See docs/pcdarts.md.
"""

from archsearch.search.methods.base import Method, register_method

# yuhuixu1993/PC-DARTS train_search.py (CIFAR-10) and the paper (Sec. 4.2): batch 256; SGD lr 0.1 cosine
# to 0.001 (learning_rate_min), momentum 0.9, weight decay 3e-4, grad clip 5; Adam(6e-4, betas (0.5, 0.999),
# weight decay 1e-3) on alpha and beta (architect.py); 50 epochs, the first 15 train the weights only
# ("if epoch >= 15: architect.step"); first order (--unrolled off); K = 4 (model_search.py MixedOp).
register_method(Method(
    name="pcdarts",
    summary="PC-DARTS: partial channels (K=4) with channel shuffle, edge normalisation, batch 256",
    paper="Xu et al., PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search, ICLR 2020",
    settings={"relaxation": "softmax", "arch_optimizer": "adam", "selector": "argmax", "order": 1,
              "arch_lr": 6e-4, "arch_betas": (0.5, 0.999), "arch_weight_decay": 1e-3,
              "w_lr": 0.1, "w_lr_min": 0.001, "w_momentum": 0.9, "w_weight_decay": 3e-4, "grad_clip": 5.0,
              "batch_size": 256, "epochs": 50, "arch_warmup_epochs": 15,
              "supernet_options": {"partial_channels": 4, "edge_normalization": True}},
))

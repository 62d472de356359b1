"""Early-stopping and regularised DARTS presets: DARTS+ and RobustDARTS (search/hooks/early_stop.py).

DARTS+ (Liang et al., "DARTS+: Improved Differentiable Architecture Search with Early Stopping",
arXiv:1909.06035): DARTS with the ``dartsplus`` rule; DARTS' 50 epochs are kept as the ceiling (our choice).

RobustDARTS (Zela et al., "Understanding and Robustifying Differentiable Architecture Search", ICLR 2020;
automl/RobustDARTS ``src/search``): DARTS-ES is DARTS with the ``rdarts`` rule, which reads the largest
Hessian eigenvalue, computed every second epoch as the reference does (``--report_freq_hessian 2``, so
its window of 5 evaluations spans 10 epochs and ``delta`` 4 looks 8 epochs back). The regularised variants raise the inner
problem's regularisation: L2 (the paper's grid of weight decays 3e-4, 9e-4, 27e-4, 81e-4) and
ScheduledDropPath (maximum drop probability from the grid 0.0, 0.2, 0.4, 0.6, raised linearly over the
search, ``model.drop_path_prob = p * epoch / (epochs - 1)``). R-DARTS picks the grid value by validation;
the presets take the largest (our choice: the paper finds the eigenvalue falls as regularisation grows).
"""

from archsearch.search.methods.base import Method, register_method

_DARTS = {"relaxation": "softmax", "arch_optimizer": "adam", "selector": "argmax", "order": 1}
_RDARTS = "Zela et al., Understanding and Robustifying Differentiable Architecture Search, ICLR 2020"

register_method(Method(
    name="dartsplus",
    summary="DARTS+: DARTS stopped at >= 2 skip connections in the normal cell or a 10-epoch stable ranking",
    paper="Liang et al., DARTS+: Improved Differentiable Architecture Search with Early Stopping, arXiv:1909.06035",
    settings={**_DARTS, "early_stop": "dartsplus"},
))
register_method(Method(
    name="rdarts",
    summary="RobustDARTS DARTS-ES: stop when the windowed largest Hessian eigenvalue grows by 1.3x",
    paper=_RDARTS, settings={**_DARTS, "early_stop": "rdarts", "hessian_every": 2},
))
register_method(Method(
    name="rdarts-l2",
    summary="RobustDARTS R-DARTS(L2): DARTS with weight decay 81e-4 on the supernet's weights",
    paper=_RDARTS, settings={**_DARTS, "w_weight_decay": 81e-4},
))
register_method(Method(
    name="rdarts-dp",
    summary="RobustDARTS R-DARTS(DP): DARTS with ScheduledDropPath on mixed edges, up to 0.6",
    paper=_RDARTS, settings={**_DARTS, "drop_path_prob": 0.6},
))

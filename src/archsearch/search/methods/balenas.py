"""BaLeNAS presets (Zhang et al., "BaLeNAS: Differentiable Architecture Search via the Bayesian
Learning Rule", CVPR 2022): DARTS loop + gaussian relaxation + VAdam + argmax or sample-and-rank.

The paper keeps DARTS' search settings (its Sec. 4); the values of the variational optimizer that
it does not state are chosen in archsearch.optim.vadam, the prior precision per example in
archsearch.optim.arch_optimizers (docs/balenas.md). Selection by ranking: search/selectors/rank.py.
"""

from archsearch.search.methods.base import Method, register_method

_SEARCH = {"relaxation": "gaussian", "arch_optimizer": "vadam", "selector": "argmax",
           # BaLeNAS: eqs. 17-18 with DARTS' architecture learning rate (3e-4) as beta
           "arch_lr": 3e-4}
_PAPER = "Zhang et al., BaLeNAS: Differentiable Architecture Search via the Bayesian Learning Rule, CVPR 2022"

register_method(Method(
    name="balenas",
    summary="BaLeNAS: alpha ~ N(mu, sigma^2) learned by the Bayesian learning rule (VAdam), first order",
    paper=_PAPER, settings={**_SEARCH, "order": 1}))
register_method(Method(
    name="balenas2",
    summary="BaLeNAS with the second-order (unrolled) architecture gradient at each sample",
    paper=_PAPER, settings={**_SEARCH, "order": 2}))
register_method(Method(
    name="balenas-tf",
    summary="BaLeNAS + training-free selection: 100 samples of q ranked by synflow (BaLeNAS-TF)",
    paper=_PAPER, settings={**_SEARCH, "order": 1, "selector": "sample_and_rank",
                            "selector_options": {"proxy": "synflow", "n": 100}}))

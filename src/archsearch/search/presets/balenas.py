"""BaLeNAS presets (Zhang et al., "BaLeNAS: Differentiable Architecture Search via the Bayesian
Learning Rule", CVPR 2022): DARTS loop + gaussian relaxation + VAdam + argmax or sample-and-rank.

The paper keeps DARTS' search settings (its Sec. 4); the values of the variational optimizer that
it does not state are chosen in archsearch.optim.vadam (docs/balenas.md).
"""

from __future__ import annotations

from archsearch.errors import ConfigError
from archsearch.optim import VAdam, VON, Vprop
from archsearch.search.components import ARCH_OPTIMIZERS
from archsearch.search.methods import Method, register_method
from archsearch.search.selectors import SELECTORS, Selector
from archsearch.checks import build, check_options


#: In a search, the prior precision is set per search-valid example: delta = delta~ N. Khan et al. (2018)
#: read delta~ = delta / N as the weight decay of mu; fixing it (not delta) keeps both the step on mu,
#: about beta N g / (N s + delta) where N s << delta, and sigma = 1 / sqrt(N s + delta) the same whatever
#: the size of the split. BaLeNAS does not state delta; 0.012 is our choice from a sweep at 2,500
#: examples (docs/balenas.md#choosing-the-prior-precision): delta = 1 and 2.5 collapsed to
#: skip connections, 10 less often, 30 (delta~ = 0.012) did not.
PRIOR_PRECISION_PER_EXAMPLE = 0.012


def _variational(name, cls):
    def build_variational(params, config, dataset_size: int | None = None):
        what = f"architecture optimizer '{name}'"
        options = check_options(what, cls, config.arch_options, fixed=("params", "lr"))
        # N: the number of data points behind the architecture loss (the search-valid split).
        if dataset_size is not None:
            options.setdefault("dataset_size", dataset_size)
        if options.get("dataset_size") is not None:  # an explicit prior_precision in arch_options wins
            options.setdefault("prior_precision", PRIOR_PRECISION_PER_EXAMPLE * options["dataset_size"])
        return build(what, cls, options, params=params, lr=config.arch_lr)

    return build_variational


for _name, _cls in (("vadam", VAdam), ("von", VON), ("vprop", Vprop)):
    ARCH_OPTIMIZERS.register(_name)(_variational(_name, _cls))


class _RankingSelector(Selector):
    """Adapter from the search loop to archsearch.search.selectors_rank: candidates are scored with a
    training-free proxy on one fixed batch of the search's data; the ranking is saved with the run."""

    rank_name = ""

    def __init__(self, proxy: str = "synflow", n: int = 100):
        from archsearch.proxies import PROXIES

        PROXIES.get(proxy)  # an unknown proxy fails before the search, not after it
        if n < 1:
            raise ConfigError(f"n (candidates to rank) must be >= 1, got {n}")
        self.proxy, self.n = proxy, n

    def select(self, search):
        from archsearch.search.selectors_rank import RANK_SELECTORS
        from archsearch.utils.io import write_json_atomic

        selector = RANK_SELECTORS.get(self.rank_name)(
            self.proxy, self.n, seed=search.config.seed,
            num_classes=search.dataset.num_classes,
            network_options={"in_channels": search.dataset.in_channels}, device=search.device)
        sampler = self.sampler(search)
        x, y = search.hessian_batch
        genotype, ranking = selector.select(search.space, x, y, sampler)
        if search.out_dir is not None:
            write_json_atomic(search.out_dir / "selection.json", {
                "selector": self.rank_name, "proxy": self.proxy, "candidates": len(ranking),
                "ranking": [{"genotype": r.arch, "score": r.score} for r in ranking]})
        return genotype

    def sampler(self, search):
        return None


@SELECTORS.register("sample_and_rank")
class SampleAndRankSelector(_RankingSelector):
    """n distinct genotypes drawn from the learned distribution, the best by the proxy (BaLeNAS-TF)."""

    rank_name = "sample_and_rank"

    def sampler(self, search):
        sampler = search.relaxation.sampler(search)
        if sampler is None:
            raise ConfigError(f"the '{search.config.relaxation}' relaxation defines no distribution to sample "
                              "genotypes from; use selector=random_and_rank or selector=argmax")
        return sampler


@SELECTORS.register("random_and_rank")
class RandomAndRankSelector(_RankingSelector):
    """n distinct genotypes drawn uniformly from the space, the best by the proxy (zero-cost baseline)."""

    rank_name = "random_and_rank"


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

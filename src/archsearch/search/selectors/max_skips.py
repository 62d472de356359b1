"""P-DARTS' final selection (Chen, Xie, Wu & Tian, ICCV 2019, Sec. 3.3): the space's argmax rule with at
most M skip connections in the normal cell."""

from __future__ import annotations

import torch

from archsearch.errors import ConfigError
from archsearch.search.selectors.base import SELECTORS, Selector


def limit_skips(space, weights: dict[str, torch.Tensor], max_skips: int, cell: str = "normal"):
    """The space's genotype with at most ``max_skips`` skip connections in ``cell``: while there are more,
    zero the weight of the weakest selected skip connection and select again (the edges of a node are
    re-ranked, as ``delete_min_sk_prob`` / ``keep_1_on`` / ``keep_2_branches`` do)."""
    if isinstance(max_skips, bool) or not isinstance(max_skips, int) or max_skips < 0:
        raise ConfigError(f"max_skips must be a non-negative integer (P-DARTS: M = 2), got {max_skips!r}")
    w = {name: torch.as_tensor(value).detach().clone().double() for name, value in weights.items()}
    skip = space.ops.index("skip_connect")
    genotype = space.genotype_from_weights(w, exclude=("none",))
    while True:
        rows = sorted(row for row, op in space.selected_edges(genotype)[cell] if op == "skip_connect")
        if len(rows) <= max_skips:
            return genotype
        weakest = min(rows, key=lambda row: float(w[cell][row, skip]))  # ties: the lower row, as np.argmin
        w[cell][weakest, skip] = 0.0
        genotype = space.genotype_from_weights(w, exclude=("none",))


@SELECTORS.register("max-skips")
class MaxSkipsSelector(Selector):
    """The space's argmax rule with at most ``max_skips`` skip connections in the normal cell (DARTS space)."""

    def __init__(self, max_skips: int = 2):
        if max_skips < 0:
            raise ConfigError(f"max_skips must be >= 0 (P-DARTS: M = 2), got {max_skips}")
        self.max_skips = max_skips

    def select(self, view):
        space = view.space
        # a normal cell whose genotype edges map to alpha rows: the DARTS space
        if "normal" not in space.arch_shapes() or "skip_connect" not in space.ops:
            raise ConfigError(f"the max-skips selector works on the DARTS space, not '{space.name}'")
        return limit_skips(space, view.deterministic_weights(), self.max_skips)

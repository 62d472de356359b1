"""Write tests/data/proxy_oracle.json: proxy scores of a few fixed cells from the reference path.

The table is the oracle of tests/test_proxy_fast.py: it was written by the scoring code as it stood before
the fast path existed (``score_all`` with every pass on its own copy), so the fast path is checked against
that code, not against itself. Run it again only on purpose, from the repository root:

    PYTHONPATH=src python tests/data/record_proxy_oracle.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from archsearch.proxies import score_all
from archsearch.spaces import get_space

ALL = ["synflow", "jacob_cov", "snip", "grad_norm", "grasp", "fisher", "nwot", "params", "flops"]
NB201_CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
]
#: (space, cell, network options, batch (n, channels, side, classes), seed): small NB201 networks of both
#: kinds, one at the proxy study's full size, and two small DARTS networks
CASES = (
    [("nb201", c, {"C": 8, "N": 1, "affine": False, "track_running_stats": False}, (16, 3, 16, 10), 3 + i)
     for i, c in enumerate(NB201_CELLS)]
    + [("nb201", NB201_CELLS[0], {"C": 8, "N": 1}, (16, 3, 16, 10), 11)]
    + [("nb201", NB201_CELLS[1], {"affine": False, "track_running_stats": False}, (64, 3, 32, 10), 5)]
    + [("darts", "DARTS_V2", {"C": 8, "layers": 4, "auxiliary": False}, (8, 3, 16, 10), 2),
       ("darts", "PC_DARTS", {"C": 6, "layers": 5, "auxiliary": False}, (8, 3, 16, 10), 4)]
)


def case_batch(n: int, channels: int, side: int, classes: int, seed: int):
    gen = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(n, channels, side, side, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def main(path: Path) -> None:
    torch.set_num_threads(1)
    rows = []
    for space_name, cell, options, shape, seed in CASES:
        space = get_space(space_name)
        genotype = space.parse(cell) if space_name == "nb201" else cell
        x, y = case_batch(*shape, seed)
        values = score_all(ALL, lambda: space.network(genotype, shape[3], in_channels=shape[1], **options), x, y,
                           seed=seed)
        rows.append({"space": space_name, "cell": cell, "options": options, "batch": list(shape), "seed": seed,
                     "scores": {k: repr(v) for k, v in values.items()}})
        print(space_name, cell, values, flush=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("proxy_oracle.json"))

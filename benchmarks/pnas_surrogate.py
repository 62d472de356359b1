"""PNAS on NAS-Bench-201: how well its surrogate ranks cells, and how its variants search.

    python benchmarks/pnas_surrogate.py rank [--train 69] [--test 1000] [--fits 2]
    python benchmarks/pnas_surrogate.py search [--seeds 5] [--queries 100] [--variants "{'predictor': 'mlp'}" ...]

``rank``: Spearman correlation between the ensemble's prediction and CIFAR-10 valid12 accuracy on ``--test``
random cells, after fitting on ``--train`` random cells, for 10, 20 and 40 epochs, LSTM and MLP.
``search``: mean best valid12 after ``--queries`` queries over seeds 0..seeds-1, per variant (keyword
options of ``make_strategy("pnas", ...)``).
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
import torch
from scipy.stats import spearmanr


def rank(train: int, test: int, fits: int) -> None:
    from archsearch.evaluate.tabular import TabularEvaluator
    from archsearch.spaces import get_space
    from archsearch.strategies.pnas_layout import make_layout
    from archsearch.strategies.pnas_predictor import Ensemble

    space, table = get_space("nb201"), TabularEvaluator("cifar10", "valid12")
    layout, rng = make_layout(space, None), np.random.default_rng(0)
    cells = [tuple(space.to_choices(space.sample(rng))) for _ in range(train + test)]
    y = [table.evaluate(layout.complete(c)).objective for c in cells]
    tokens = [layout.tokens(c) for c in cells]
    for kind in ("lstm", "mlp"):
        for epochs in (10, 20, 40):
            rhos, start = [], time.perf_counter()
            for fit in range(fits):
                ensemble = Ensemble(kind, layout.vocabulary, layout.width, epochs=epochs)
                ensemble.fit(tokens[:train], [v / 100 for v in y[:train]], torch.Generator().manual_seed(fit))
                rhos.append(spearmanr(ensemble.predict(tokens[train:]).numpy(), y[train:])[0])
            print(f"{kind} {epochs:3d} epochs: Spearman {np.mean(rhos):.3f} ({', '.join(f'{r:.3f}' for r in rhos)}), "
                  f"{(time.perf_counter() - start) / fits:.1f} s per fit", flush=True)


def search(seeds: int, queries: int, variants: list[dict]) -> None:
    from archsearch.evaluate.tabular import TabularEvaluator
    from archsearch.spaces import get_space
    from archsearch.strategies import Budget, make_strategy

    space, table = get_space("nb201"), TabularEvaluator("cifar10", "valid12")
    for options in variants:
        best, start = [], time.perf_counter()
        for seed in range(seeds):
            best.append(make_strategy("pnas", space, seed=seed, **options).run(table, Budget(queries=queries)).best_objective)
        print(f"{options}: mean best {np.mean(best):.3f} ({' '.join(f'{b:.2f}' for b in best)}), "
              f"{(time.perf_counter() - start) / seeds:.1f} s per run", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rank")
    r.add_argument("--train", type=int, default=69)
    r.add_argument("--test", type=int, default=1000)
    r.add_argument("--fits", type=int, default=2)
    s = sub.add_parser("search")
    s.add_argument("--seeds", type=int, default=5)
    s.add_argument("--queries", type=int, default=100)
    s.add_argument("--variants", nargs="+", default=["{}", "{'predictor': 'mlp'}", "{'predictor': 'mlp', 'beam': 16}"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "rank":
        rank(args.train, args.test, args.fits)
    else:
        search(args.seeds, args.queries, [ast.literal_eval(v) for v in args.variants])


if __name__ == "__main__":
    main()

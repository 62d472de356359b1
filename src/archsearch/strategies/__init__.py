"""Black-box search strategies behind one ask/tell interface and one registry.

``make_strategy(name, space, seed, **options)`` builds one; ``STRATEGIES.names()`` lists them. The optional
strategies (``bo``: BoTorch, ``tpe``: Optuna) import their dependency only when built.
"""

from archsearch.strategies.base import STRATEGIES, Strategy, make_strategy, optional
from archsearch.strategies.budget import Budget, RunResult, run_strategy
from archsearch.strategies import evolution, local, pnas, random_search, reinforce  # noqa: F401  (register)
from archsearch.strategies.warmstart import rank_by_proxy, warm_start

optional("bo", "archsearch.strategies.bo", "BayesianOptimisation", package="botorch", extra="bo")
optional("tpe", "archsearch.strategies.tpe", "TPE", package="optuna", extra="tpe")

__all__ = ["STRATEGIES", "Strategy", "Budget", "RunResult", "make_strategy", "run_strategy", "rank_by_proxy",
           "warm_start"]

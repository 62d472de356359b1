"""NAS-Bench-201 as an evaluator: a table lookup that charges the simulated training time.

The protocol of the NAS-Bench-201 paper (Dong & Yang, ICLR 2020, Sec. 5):
- objective = validation accuracy after the 12-epoch schedule (``valid12``, the paper's default) or after
  200 epochs (``valid200``), in the ``cifar10-valid`` setting for CIFAR-10;
- reported = 200-epoch test accuracy (CIFAR-10: the ``cifar10`` setting, trained on train+valid);
- cost = simulated training time: 200-epoch time x epochs/200 (the 12-epoch time is charged pro rata,
  see ``NB201Table.train_time``). The paper's code also adds one validation pass; the table has no
  validation time, so it is left out (it is about 1-2 % of a 12-epoch run).

A lookup is a dict access keyed by genotype plus list indexing: well over 100,000 queries per second.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache

from archsearch.errors import DataError, InvalidGenotypeError, UnknownNameError
from archsearch.evaluate.result import EvalResult, Evaluator
from archsearch.groundtruth.nb201 import COLUMN_PREFIX, NO_C10_VALID_TEST, TIME_COLUMN, NB201Table
from archsearch.groundtruth.nb201_arch import parse_arch_str
from archsearch.groundtruth.nb201_datasets import CIFAR10_VALID, canonical_dataset

OBJECTIVES = {"valid12": 12, "valid200": 200}


@lru_cache(maxsize=1)
def _genotype_index() -> dict:
    """genotype -> official index, built once per process from the space's enumeration."""
    from archsearch.spaces import get_space

    space, table = get_space("nb201"), NB201Table.load()
    return {g: table.index_of(space.to_string(g)) for g in space.enumerate()}


@lru_cache(maxsize=8)
def _columns(dataset: str, objective: str) -> tuple[list, list, list, list]:
    table, prefix = NB201Table.load(), COLUMN_PREFIX[dataset]
    epochs = OBJECTIVES[objective]
    # Python lists: scalar indexing of a list is several times faster than of a numpy array
    objective_col = table.column(f"{prefix}_valid_{epochs}").tolist()
    test_col = table.column(f"{prefix}_test_200").tolist()
    valid_col = table.column(f"{prefix}_valid_200").tolist()
    cost_col = (table.column(TIME_COLUMN[dataset]) * (epochs / 200.0)).tolist()
    return objective_col, test_col, valid_col, cost_col


class TabularEvaluator(Evaluator):
    """NAS-Bench-201 ground truth with simulated cost.

    ``dataset``: one of NB201's (groundtruth/nb201_datasets.py) or an alias; ``objective``: valid12 | valid200.
    """

    def __init__(self, dataset: str = "cifar10", objective: str = "valid12"):
        if objective not in OBJECTIVES:
            raise UnknownNameError("objective", objective, OBJECTIVES)
        self.dataset = canonical_dataset(dataset)
        if self.dataset == CIFAR10_VALID:  # an evaluation reports test accuracy, which the table lacks for it
            raise DataError(f"{NO_C10_VALID_TEST}; 'cifar10' searches on cifar10-valid's valid accuracy and reports "
                            "cifar10's test accuracy, the NAS-Bench-201 protocol")
        self.objective = objective
        self._index = _genotype_index()
        self._objective, self._test, self._valid, self._cost = _columns(self.dataset, objective)
        self.queries = 0

    def __reduce__(self):  # processes rebuild the columns from the package's table instead of pickling them
        return (TabularEvaluator, (self.dataset, self.objective))

    def index(self, genotype: Hashable) -> int:
        try:
            return self._index[genotype]
        except (KeyError, TypeError):
            pass
        if isinstance(genotype, str):
            return self._index[parse_arch_str(genotype)]
        raise InvalidGenotypeError(f"{genotype!r} is not a NAS-Bench-201 genotype (pass an NB201Genotype or "
                                   "an arch string such as '|nor_conv_3x3~0|+|...|')")

    def evaluate(self, genotype: Hashable) -> EvalResult:
        i = self.index(genotype)
        self.queries += 1
        return EvalResult(self._objective[i], self._test[i], self._cost[i], self._valid[i])

    def optimum(self) -> tuple[int, float]:
        """Index and value of the best objective in the table (for regret)."""
        best = max(range(len(self._objective)), key=self._objective.__getitem__)
        return best, self._objective[best]

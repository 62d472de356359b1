"""Drive a strategy against an evaluator under a budget, serially, in synchronous batches or asynchronously.

Time is the evaluator's ``cost`` (simulated seconds on a table): with ``batch`` B evaluations in flight, the
clock advances as B parallel workers would see it. A synchronous round takes as long as its slowest member;
an asynchronous run tells each result when its worker finishes and immediately asks for the next genotype
(the asynchronous regularized evolution of Real et al. 2019). With B = 1 both are the NAS-Bench-201 protocol:
the clock is the sum of costs, and the query that would overrun a seconds budget is dropped and ends the run.

Results are told in query order (synchronous) or in simulated finishing order, ties by query order
(asynchronous), never in the order a pool of processes happens to return them, so a seed gives the same
run whatever executes the evaluations.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from archsearch.checks import integer, number
from archsearch.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """Stop after ``queries`` evaluations or ``seconds`` of (simulated) time, whichever comes first."""

    queries: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.queries is None and self.seconds is None:
            raise ConfigError("a budget needs queries or seconds (e.g. Budget(seconds=12000))")
        if self.queries is not None:
            integer(self.queries, "budget queries", minimum=1)
        if self.seconds is not None:  # finite: an infinite budget on a table never ends
            number(self.seconds, "budget seconds", positive=True)

    def fits(self, done: int, finish: float) -> bool:
        return (self.queries is None or done < self.queries) and (self.seconds is None or finish <= self.seconds)


@dataclass
class RunResult:
    strategy: str
    seed: int | None
    #: per told query: (arch string, objective, reported, cost, clock when told)
    records: list[tuple[str, float, float, float, float]] = field(default_factory=list)
    best_arch: str | None = None
    best_objective: float = -math.inf
    best_reported: float = math.nan
    best_valid: float = math.nan
    elapsed: float = 0.0

    @property
    def queries(self) -> int:
        return len(self.records)

    def add(self, arch: str, result, clock: float) -> None:
        self.records.append((arch, result.objective, result.reported, result.cost, clock))
        self.elapsed = clock
        if result.objective > self.best_objective:  # strict: the first of equal genotypes stays best
            self.best_arch, self.best_objective = arch, result.objective
            self.best_reported, self.best_valid = result.reported, result.valid

    def best_so_far(self) -> list[tuple[float, int, float, float]]:
        """(clock, queries, best objective, reported of the best) at every improvement."""
        out, best = [], -math.inf
        for n, (_, objective, reported, _, clock) in enumerate(self.records, start=1):
            if objective > best:
                best = objective
                out.append((clock, n, objective, reported))
        return out

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "seed": self.seed, "best_arch": self.best_arch,
                "best_objective": self.best_objective, "test": self.best_reported, "valid": self.best_valid,
                "queries": self.queries, "elapsed": self.elapsed, "best_so_far": self.best_so_far()}


def _evaluate_all(evaluator, genotypes, executor):
    if executor is None:
        return [evaluator.evaluate(g) for g in genotypes]
    return list(executor.map(evaluator.evaluate, genotypes))  # map keeps query order


def run_strategy(strategy, evaluator, budget: Budget, batch: int = 1, executor=None, asynchronous: bool = False,
                 callback=None) -> RunResult:
    """Ask, evaluate, tell until ``budget`` is spent. ``callback(genotype, result, run)`` after each tell."""
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    if not isinstance(budget, Budget):
        raise ConfigError("budget must be an archsearch.strategies.Budget, e.g. Budget(queries=100)")
    run = RunResult(strategy.name, strategy.seed)
    if asynchronous:
        _run_async(strategy, evaluator, budget, batch, executor, callback, run)
    else:
        _run_sync(strategy, evaluator, budget, batch, executor, callback, run)
    return run


def _tell(strategy, genotype, result, clock, run, callback):
    strategy.tell(genotype, result)
    run.add(strategy.space.to_string(genotype), result, clock)
    if callback is not None:
        callback(genotype, result, run)


def _run_sync(strategy, evaluator, budget, batch, executor, callback, run):
    clock = 0.0
    while budget.fits(run.queries, clock):
        size = batch if budget.queries is None else min(batch, budget.queries - run.queries)
        genotypes = strategy.ask(size)
        results = _evaluate_all(evaluator, genotypes, executor)
        for genotype, result in zip(genotypes, results):
            if not budget.fits(run.queries, clock + result.cost):
                return  # the NAS-Bench-201 rule: a query that overruns the budget is not counted
            _tell(strategy, genotype, result, clock + result.cost, run, callback)
        clock += max(r.cost for r in results)


def _run_async(strategy, evaluator, budget, workers, executor, callback, run):
    asked = 0

    def submit(clock):
        nonlocal asked
        genotype = strategy.ask()
        handle = executor.submit(evaluator.evaluate, genotype) if executor is not None else evaluator.evaluate(genotype)
        asked += 1
        return genotype, handle

    def may_ask():
        return budget.queries is None or asked < budget.queries

    if executor is None:  # simulated time: deterministic finishing order
        flight = []
        for _ in range(workers):
            if may_ask():
                genotype, result = submit(0.0)
                heapq.heappush(flight, (result.cost, asked, genotype, result))
        while flight:
            finish, _, genotype, result = heapq.heappop(flight)
            if not budget.fits(run.queries, finish):
                return
            _tell(strategy, genotype, result, finish, run, callback)
            if may_ask():
                genotype, result = submit(finish)
                heapq.heappush(flight, (finish + result.cost, asked, genotype, result))
        return
    # real workers: results are told in the order they complete (not reproducible run to run); each job's
    # clock starts when its worker became free, so the clock is that of the run as the workers lived it
    from concurrent.futures import FIRST_COMPLETED, wait

    futures, clock = {}, 0.0
    for _ in range(workers):
        if may_ask():
            genotype, future = submit(clock)
            futures[future] = (genotype, clock)
    while futures:
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: futures[f][1]):
            (genotype, start), result = futures.pop(future), future.result()
            clock = max(clock, start + result.cost)
            if not budget.fits(run.queries, clock):
                for other in futures:
                    other.cancel()
                return
            _tell(strategy, genotype, result, clock, run, callback)
            if may_ask():
                new_genotype, new_future = submit(clock)
                futures[new_future] = (new_genotype, clock)

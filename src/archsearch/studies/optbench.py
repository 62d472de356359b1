"""The optbench study: local and global optimizers on synthetic multimodal functions.

Reproduces appendix B of "Making Differentiable Architecture Search less local" (Bodin, Tomasi &
Dai, 2021): Adam at several learning rates and with a cosine schedule, the same wrapped in DSCD,
uniform random sampling of the domain, and CMA-ES (the ``cma`` package), each run ``runs`` times
from seeded uniform starting points with the same budget of ``steps`` function evaluations.

Final value: Adam's and DSCD's current point after the last step; uniform sampling's and CMA-ES'
best point found. Writes ``summary.json`` = {optimizer: {"mean", "std", "best"}} of the final values
(plus ``curves.json``) and ``convergence.png``: mean and one standard deviation band per optimizer.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from archsearch.groundtruth.synthetic import TestFunction, get_function
from archsearch.checks import MAX_REPEATS, fits_in_memory, integer, names, number
from archsearch.checks import seed as check_seed
from archsearch.errors import ArchSearchError, ConfigError, shown
from archsearch.optim.dscd import DSCD
from archsearch.utils.io import write_json_atomic

OPTIMIZERS = ("adam", "adam+dscd", "uniform", "cmaes")
#: the largest study: beyond these one run takes hours (the paper uses D = 10 and 2,000 steps)
MAX_DIM = 100_000
MAX_STEPS = 10_000_000
DEFAULT_LRS = "0.01,0.05,0.1,cos:0.1"


def parse_lrs(text: str) -> list[tuple[float, bool]]:
    """'0.01,cos:0.1' -> [(0.01, False), (0.1, True)]: a learning rate, cosine-annealed with 'cos:'."""
    if not isinstance(text, str):
        raise ConfigError(f"--lrs is comma-separated text such as '{DEFAULT_LRS}', got {shown(text)}")
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        cosine = item.startswith("cos:")
        try:
            lr = float(item[4:] if cosine else item)
        except ValueError:
            raise ConfigError(f"bad learning rate {shown(item)} in --lrs (give numbers, 'cos:0.1' for a cosine "
                              "schedule)") from None
        out.append((number(lr, "a learning rate in --lrs", positive=True), cosine))
    if not out:
        raise ConfigError("--lrs needs at least one learning rate")
    return out


def _label(name: str, lr: float, cosine: bool) -> str:
    return f"{name} {'cos ' if cosine else ''}lr={lr:g}"


def _start(function: TestFunction, dim: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(function.low, function.high, size=dim)


def run_gradient(function: TestFunction, x0: np.ndarray, steps: int, lr: float, cosine: bool,
                 dscd: bool, seed: int, dscd_options: dict | None = None) -> np.ndarray:
    """f at the current point after each step of Adam (optionally inside DSCD); one evaluation per step."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    adam = torch.optim.Adam([x], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(adam, T_max=steps) if cosine else None
    optimizer = DSCD(adam, bound=(function.low, function.high), rounds=steps, seed=seed,
                     **(dscd_options or {})) if dscd else adam

    def closure():
        optimizer.zero_grad()
        value = function(x)
        value.backward()
        return value.detach()

    trace = np.empty(steps)
    for t in range(steps):
        optimizer.step(closure)
        with torch.no_grad():
            x.clamp_(function.low, function.high)  # the domain is a box
        if scheduler is not None:
            scheduler.step()
        trace[t] = float(function(x.detach()))
    return trace


def run_uniform(function: TestFunction, dim: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Best value so far of ``steps`` points drawn uniformly from the domain."""
    points = torch.from_numpy(rng.uniform(function.low, function.high, size=(steps, dim)))
    return np.minimum.accumulate(function(points).numpy())


def run_cmaes(function: TestFunction, x0: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Best value so far of CMA-ES (initial sigma a quarter of the domain width) over ``steps`` evaluations."""
    try:
        import cma
    except ImportError:
        raise ArchSearchError("the cmaes optimizer needs the 'cma' package: pip install cma") from None
    width = function.high - function.low
    # CMA-ES seeds numpy's legacy generator (32 bits, and 0 means "from the clock"): 1..2**32-1, seed + 1 below that
    options = {"bounds": [function.low, function.high], "seed": seed % (2**32 - 1) + 1, "verbose": -9,
               "maxfevals": steps}
    es = cma.CMAEvolutionStrategy(list(x0), 0.25 * width, options)
    trace, best = [], math.inf
    while len(trace) < steps and not es.stop():
        candidates = es.ask()
        values = function(torch.tensor(np.array(candidates))).numpy()
        es.tell(candidates, values.tolist())
        for v in values[: steps - len(trace)]:
            best = min(best, float(v))
            trace.append(best)
    trace += [best] * (steps - len(trace))
    return np.array(trace)


def check_study(function: str, dim: int, optimizers, lrs: list[tuple[float, bool]], steps: int, runs: int,
                seed: int) -> tuple:
    """The arguments of ``optbench`` checked, as (function, dim, optimizers, steps, runs, seed)."""
    optimizers = names(optimizers, "optimizers")
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown:
        raise ConfigError(f"unknown optimizer(s) {', '.join(unknown)} (known: {', '.join(OPTIMIZERS)})")
    dim = integer(dim, "--dim", minimum=1, maximum=MAX_DIM)
    if dim == 1 and "cmaes" in optimizers:  # pycma adapts a covariance matrix: it refuses one dimension
        raise ConfigError("the cmaes optimizer needs --dim 2 or more (CMA-ES does not run in one dimension)")
    steps = integer(steps, "--steps", minimum=1, maximum=MAX_STEPS)
    runs = integer(runs, "--runs", minimum=1, maximum=MAX_REPEATS)
    labels = sum(len(lrs) if name.startswith("adam") else 1 for name in optimizers)
    fits_in_memory(8 * steps * (dim + runs * labels), "this optbench (points and traces)")
    return get_function(function), dim, optimizers, steps, runs, check_seed(seed, "--seed")


def optbench(function: str, dim: int, optimizers: list[str], lrs: list[tuple[float, bool]], steps: int,
             runs: int, seed: int, dscd_options: dict | None = None) -> dict[str, np.ndarray]:
    """Traces (runs, steps) per optimizer label; the same starting points for every optimizer."""
    f, dim, optimizers, steps, runs, seed = check_study(function, dim, optimizers, lrs, steps, runs, seed)
    starts = [_start(f, dim, np.random.default_rng([seed, r])) for r in range(runs)]
    traces: dict[str, list[np.ndarray]] = {}
    for name in optimizers:
        for r, x0 in enumerate(starts):
            run_seed = (seed * 1000 + r) % 2**32  # DSCD takes 32 bits; below seed 4,294,968 this is seed * 1000 + r
            if name in ("adam", "adam+dscd"):
                for lr, cosine in lrs:
                    trace = run_gradient(f, x0, steps, lr, cosine, name == "adam+dscd", run_seed, dscd_options)
                    traces.setdefault(_label(name, lr, cosine), []).append(trace)
            elif name == "uniform":
                traces.setdefault(name, []).append(run_uniform(f, dim, steps, np.random.default_rng([seed, r, 1])))
            else:
                traces.setdefault(name, []).append(run_cmaes(f, x0, steps, run_seed))
    return {label: np.stack(t) for label, t in traces.items()}


def summarise(traces: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {label: {"mean": float(t[:, -1].mean()), "std": float(t[:, -1].std()), "best": float(t[:, -1].min())}
            for label, t in traces.items()}


def save_optbench(traces: dict[str, np.ndarray], out: Path, function: str, dim: int, steps: int, runs: int,
                  seed: int) -> tuple[dict, float]:
    """``summary.json``, ``curves.json`` and ``convergence.png`` in ``out``; returns the summary and the
    function's global minimum."""
    # matplotlib takes a second to import: only when a figure is drawn
    from archsearch.report.png import save_png
    from archsearch.studies.figures import convergence_figure

    summary = summarise(traces)
    write_json_atomic(out / "summary.json", summary)
    minimum = get_function(function).minimum(dim)
    write_json_atomic(out / "curves.json", {
        "function": function, "dim": dim, "steps": steps, "runs": runs, "seed": seed,
        "global_minimum": minimum,
        "mean": {k: t.mean(axis=0).tolist() for k, t in traces.items()},
        "std": {k: t.std(axis=0).tolist() for k, t in traces.items()}})
    save_png(convergence_figure(traces, f"{function}, D={dim}, {runs} runs", minimum), out / "convergence.png",
             dpi=120)
    return summary, minimum

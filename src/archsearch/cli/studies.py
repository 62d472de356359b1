"""``bench``, ``proxies``, ``zero-cost`` and ``optbench``: the studies' arguments, checked in the order
the user reads them, then handed to ``archsearch.studies``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from archsearch.cli.common import comma_list, int_list, progress_printer
from archsearch.errors import ConfigError, DataError, shown
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS

if TYPE_CHECKING:
    from archsearch.spaces.base import SearchSpace

# The studies' modules import torch: each function below imports what it uses, so that the other commands
# (and these parsers, built on first use) do not pay for them.


# -- bench -----------------------------------------------------------------------------------------
def add_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from archsearch.strategies import STRATEGIES
    from archsearch.studies.pool import EXECUTORS

    parser.add_argument("--space", default="nb201", help="tabular search space (default nb201)")
    parser.add_argument("--dataset", default="cifar10", help=" | ".join(NB201_DATASETS))
    parser.add_argument("--strategies", required=True,
                        help=f"comma-separated strategies: {', '.join(STRATEGIES.names())}")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--queries", type=int, help="budget in evaluations")
    budget.add_argument("--seconds", type=float, help="budget in simulated training seconds (NB201 paper: 12000)")
    parser.add_argument("--seeds", type=int, default=10, help="runs per strategy (seeds 0..K-1)")
    parser.add_argument("--objective", default="valid12", choices=["valid12", "valid200"],
                        help="the validation accuracy a strategy sees (after 12 or 200 epochs)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes running seeds in parallel")
    parser.add_argument("--executor", default="process", choices=list(EXECUTORS), help="what runs the seeds")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address ('auto', 'ray://host:10001', "
                                                            "or 'local' to start one here)")
    parser.add_argument("--batch", type=int, default=1, help="genotypes in flight per run (simulated workers)")
    parser.add_argument("--async", dest="asynchronous", action="store_true",
                        help="with --batch B: ask a new genotype as soon as one finishes")
    parser.add_argument("--option", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                        help="strategy keyword argument, e.g. bo.acquisition=ucb (YAML value)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def _strategy_options(items: list[str]) -> dict:
    """``--option STRATEGY.KEY=VALUE`` items as {strategy: {key: value read as YAML}}."""
    import yaml

    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, arg = key.partition(".")
        if not sep or not dot or not name.strip() or not arg.strip():
            raise ConfigError(f"--option {shown(item)} must look like STRATEGY.KEY=VALUE, e.g. bo.acquisition=ucb")
        try:
            parsed = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError) as error:  # RecursionError: a value nested thousands deep
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(f"--option {shown(item)}: the value is not valid YAML ({reason})") from None
        options.setdefault(name.strip(), {})[arg.strip()] = parsed
    return options


def cmd_bench(args: argparse.Namespace) -> int:
    from archsearch.studies.bench import run_bench

    run_bench(args.strategies, seeds=args.seeds, queries=args.queries, seconds=args.seconds, space=args.space,
              dataset=args.dataset, objective=args.objective, workers=args.workers, ray_address=args.ray_address,
              out=args.out, quiet=args.quiet, batch=args.batch, asynchronous=args.asynchronous,
              executor=args.executor, options=_strategy_options(args.option))
    return 0


# -- proxies and zero-cost ---------------------------------------------------------------------------
def add_proxies_arguments(parser: argparse.ArgumentParser) -> None:
    from archsearch.studies.proxy_data import BATCH_SIZE
    from archsearch.studies.proxy_scores import DEFAULT_PROXIES
    from archsearch.studies.proxy_study import DRAWS, NETWORKS

    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    parser.add_argument("--proxies", type=comma_list, default=list(DEFAULT_PROXIES),
                        help=f"comma-separated proxies (default {','.join(DEFAULT_PROXIES)})")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--archs", type=int, default=None, help="score N architectures sampled uniformly")
    source.add_argument("--archs-file", default=None, help="score the architectures in FILE, one string a line")
    parser.add_argument("--data", default="cifar10", help="dataset of the batch (default cifar10)")
    parser.add_argument("--data-dir", default=None, help="where the dataset lies")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images in the batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, the batch and the initialisation")
    parser.add_argument("--draws", choices=DRAWS, default="per-arch",
                        help="per-arch (default, as the zero-cost code): each architecture gets the next augmented "
                             "batch of the training loader and initial weights of its own (seed + i); shared: one "
                             "unaugmented batch and one initialisation seed for all")
    parser.add_argument("--network", choices=NETWORKS, default="zero-cost",
                        help="nb201 only. zero-cost (default): the zero-cost code's model, cell BatchNorms without "
                             "affine and without running statistics; benchmark: xautodl's network (affine)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    _add_scoring_workers(parser)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _add_scoring_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=1,
                        help="architectures scored at a time, each in a worker process on one core (default 1: "
                             "one architecture at a time, on every core); the scores are those of one thread")
    parser.add_argument("--ray-address", default=None,
                        help="score as Ray tasks instead, --workers of them in flight ('auto', 'ray://host:10001', "
                             "or 'local' to start one here)")


def _check_workers(args, device) -> None:
    """--workers and --ray-address, before the data set is read and the output directory made."""
    from archsearch.studies.proxy_scores import check_scoring_workers

    check_scoring_workers(args.workers, args.ray_address, device)


def _read_archs_file(space: SearchSpace, text_path: str) -> list:
    from archsearch.checks import readable_path

    path = readable_path(text_path, "--archs-file", folder=False)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"--archs-file {shown(str(path))} is not UTF-8 text (one architecture string a line)") from None
    except OSError as error:
        raise DataError(f"cannot read --archs-file {shown(str(path))} ({error.strerror or error})") from None
    lines = [line.strip() for line in text.splitlines()]
    genotypes = [space.from_string(line) for line in lines if line and not line.startswith("#")]
    if not genotypes:
        raise ConfigError(f"--archs-file {shown(str(path))} lists no architectures (one string a line)")
    return genotypes


def _architectures(space: SearchSpace, args) -> list:
    from archsearch.checks import integer
    from archsearch.studies.proxy_study import sample_architectures

    if args.archs_file:
        return _read_archs_file(space, args.archs_file)
    count = integer(100 if args.archs is None else args.archs, "--archs", minimum=1, maximum=space.size())
    return sample_architectures(space, count, args.seed)


def _common(args):
    """What both commands check before any work: the space, the seeds, the device, the data set's name."""
    from archsearch.data import DATASETS
    from archsearch.checks import seed as check_seed
    from archsearch.runtime import resolve_device
    from archsearch.spaces.base import get_space

    space = get_space(args.space)
    for flag in ("seed", "init_seed"):
        if hasattr(args, flag):
            check_seed(getattr(args, flag), "--" + flag.replace("_", "-"))
    device = resolve_device(args.device)
    DATASETS.get(args.data)  # known, even where the proxies read no data
    return space, device


def cmd_proxies(args) -> int:
    import numpy as np

    from archsearch.checks import integer, names, output_dir
    from archsearch.proxies import PROXIES
    from archsearch.studies.proxy_study import run_proxy_study

    space, device = _common(args)
    proxies = names(args.proxies, "--proxies", PROXIES)
    integer(args.batch_size, "--batch-size", minimum=1)
    genotypes = _architectures(space, args)
    _check_workers(args, device)
    out = output_dir(args.out, "--out")
    rows, correlations = run_proxy_study(
        space, genotypes, proxies, out, data=args.data, data_dir=args.data_dir, batch_size=args.batch_size,
        seed=args.seed, draws=getattr(args, "draws", "per-arch"), network=getattr(args, "network", "zero-cost"),
        device=device, quiet=args.quiet, progress=progress_printer(args.quiet, "scored"), workers=args.workers,
        ray_address=args.ray_address)
    if not args.quiet:
        seconds = np.mean([r["seconds"] for r in rows])
        print(f"{len(rows)} architectures, {seconds:.2f} s each; Spearman vs 200-epoch accuracy:")
        for name, per in correlations.items():
            print("  " + f"{name:>10}: " + "  ".join(f"{d} {v['spearman']:+.3f}" for d, v in per.items()))
        print(f"wrote {out}/scores.csv, correlations.json and scatter plots")
    return 0


def add_zero_cost_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (default nb201: needs its benchmark)")
    parser.add_argument("--proxy", default="synflow", help="the ranking proxy (default synflow)")
    parser.add_argument("--samples", type=int_list, default=[10, 50, 100],
                        help="comma-separated sample sizes (default 10,50,100)")
    parser.add_argument("--seeds", type=int, default=20, help="number of repeats, seeds 0..K-1 (default 20)")
    parser.add_argument("--init-seed", type=int, default=0, help="seed of every network's initialisation")
    parser.add_argument("--data", default="cifar10", help="dataset of the batch (for data-reading proxies)")
    parser.add_argument("--data-dir", default=None, help="where the dataset lies")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    _add_scoring_workers(parser)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def cmd_zero_cost(args) -> int:
    from archsearch.checks import MAX_REPEATS, integer, output_dir
    from archsearch.proxies import PROXIES
    from archsearch.studies.proxy_data import BATCH_SIZE, batch_for
    from archsearch.studies.zero_cost import sample_sizes, save_zero_cost, zero_cost_baseline

    space, device = _common(args)
    if not space.has_ground_truth:
        raise ConfigError(f"zero-cost needs a tabular benchmark; only nb201 has one here, got {shown(args.space)}")
    integer(args.seeds, "--seeds", minimum=1, maximum=MAX_REPEATS)
    PROXIES.get(args.proxy)
    sample_sizes(args.samples, space)
    _check_workers(args, device)
    out = output_dir(args.out, "--out")
    x, y, num_classes = batch_for([args.proxy], args.data, args.data_dir, args.init_seed, BATCH_SIZE, args.quiet,
                                  device)
    result = zero_cost_baseline(space, args.proxy, args.samples, list(range(args.seeds)), x, y,
                                init_seed=args.init_seed, num_classes=num_classes, device=device,
                                progress=progress_printer(args.quiet, "scored"), workers=args.workers,
                                ray_address=args.ray_address)
    save_zero_cost(result, out)
    if not args.quiet:
        print(f"zero-cost NAS with {args.proxy} over {args.seeds} seeds (test accuracy %, 200 epochs):")
        for n, entry in result["samples"].items():
            print(f"  n={n:>4}: " + "  ".join(f"{d} {s['mean']:.2f} +- {s['std']:.2f}"
                                             for d, s in entry["test_accuracy"].items()))
        print(f"wrote {out}/zero_cost.json and zero_cost.csv")
    return 0


# -- optbench --------------------------------------------------------------------------------------
def add_optbench_arguments(parser: argparse.ArgumentParser) -> None:
    from archsearch.groundtruth.synthetic import FUNCTIONS
    from archsearch.studies.optbench import DEFAULT_LRS, OPTIMIZERS

    parser.add_argument("--function", default="styblinski-tang", choices=sorted(FUNCTIONS),
                        help="the test function (known global minimum)")
    parser.add_argument("--dim", type=int, default=10, help="dimension D (default 10)")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                        help="comma-separated optimizers (default: all, %(default)s)")
    parser.add_argument("--lrs", default=DEFAULT_LRS,
                        help=f"Adam learning rates, 'cos:LR' for a cosine schedule (default {DEFAULT_LRS})")
    parser.add_argument("--steps", type=int, default=2000, help="function evaluations per run (default 2000)")
    parser.add_argument("--runs", type=int, default=10, help="runs per optimizer (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting points and the optimizers")
    parser.add_argument("--out", default="runs/optbench", help="output directory (default runs/optbench)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def cmd_optbench(args: argparse.Namespace) -> int:
    from archsearch.checks import output_dir
    from archsearch.studies.optbench import check_study, optbench, parse_lrs, save_optbench

    lrs = parse_lrs(args.lrs)
    check_study(args.function, args.dim, args.optimizers, lrs, args.steps, args.runs, args.seed)
    out = output_dir(args.out, "--out")
    traces = optbench(args.function, args.dim, args.optimizers, lrs, args.steps, args.runs, args.seed)
    summary, minimum = save_optbench(traces, out, args.function, args.dim, args.steps, args.runs, args.seed)
    if not args.quiet:
        print(f"{args.function}, D={args.dim}: global minimum {minimum:.4f}; final value over {args.runs} runs")
        print(f"{'optimizer':26s} {'mean':>12s} {'std':>10s} {'best':>12s}")
        for label, s in summary.items():
            print(f"{label:26s} {s['mean']:12.4f} {s['std']:10.4f} {s['best']:12.4f}")
        print(f"written: {out / 'summary.json'}, {out / 'convergence.png'}")
    return 0


def _add(sub, name: str, text: str, add_arguments, command) -> None:
    def arguments(parser) -> None:  # on first use: the defaults come from torch-level modules
        add_arguments(parser)
        parser.set_defaults(func=command)

    sub.add_parser(name, help=text, arguments=arguments)


def add_studies(sub) -> None:
    _add(sub, "bench", "black-box search strategies on tabular ground truth, across seeds", add_bench_arguments,
         cmd_bench)
    _add(sub, "proxies", "score architectures with training-free proxies and correlate with ground truth",
         add_proxies_arguments, cmd_proxies)
    _add(sub, "zero-cost", "the zero-cost NAS baseline: sample, rank by a proxy, report the pick",
         add_zero_cost_arguments, cmd_zero_cost)
    _add(sub, "optbench", "local vs global optimizers on synthetic multimodal functions", add_optbench_arguments,
         cmd_optbench)

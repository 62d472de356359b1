"""The ``archsearch`` command line: parses, builds objects from a config, calls the library.

Every error a user can cause ends as one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archsearch.errors import ArchSearchError, ConfigError
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS


class _Usage(ArchSearchError):
    """A combination of arguments the command does not take."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        self.exit(2, f"archsearch: error: {message} (see '{self.prog} --help')\n")


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


# -- spaces, methods, ground truth ---------------------------------------------------------------
def cmd_spaces(args) -> int:
    from archsearch.spaces import SPACES

    for name, cls in SPACES.items():
        space = cls()
        size = space.size()
        print(f"{name:8s} {len(space.ops)} ops, {size if size is not None else 'not enumerable'} genotypes: "
              f"{(cls.__doc__ or '').strip().splitlines()[0]}")
    return 0


def cmd_methods(args) -> int:
    from archsearch.search import METHODS

    for name, method in METHODS.items():
        print(f"{name:12s} {method.summary}\n{'':12s} [{method.paper}]")
    return 0


def cmd_nb201_query(args) -> int:
    from archsearch.groundtruth.nb201 import NB201Table

    table = NB201Table.load()
    result = table.query(args.arch, args.dataset)
    out = {"index": result.index, "arch": result.arch, "dataset": result.dataset, "valid": result.valid,
           "test": result.test, "valid_12": result.valid_12, "test_12": result.test_12,
           "params_M": result.params_M, "flops_M": result.flops_M, "train_time_200_s": result.train_time_200_s}
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:17s} {value}")
    return 0


#: the largest network sizes ``info`` measures: beyond them building the network, even on the meta device,
#: takes minutes
INFO_LIMITS = {"num_classes": 1_000_000, "C": 4096, "N": 100, "layers": 300, "image_size": 4096}


def _network_options(space, given: dict) -> dict:
    """The network sizes given on the command line, each within INFO_LIMITS and taken by the space."""
    import inspect

    from archsearch.checks import integer
    from archsearch.errors import ConfigError

    takes = [p for p in inspect.signature(space.network).parameters if p not in ("genotype", "_")]
    options = {}
    for key, value in given.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if key not in takes:
            raise ConfigError(f"{flag} does not apply to the {space.name} space (its network takes: {', '.join(takes)})")
        options[key] = integer(value, flag, minimum=1, maximum=INFO_LIMITS[key])
    return options


def cmd_info(args) -> int:
    from archsearch.checks import integer
    from archsearch.diagnostics.flops import params_and_flops
    from archsearch.spaces import get_space

    space = get_space(args.space)
    genotype = space.from_string(args.arch)
    options = _network_options(space, {"num_classes": args.num_classes, "C": args.C, "N": args.N,
                                       "layers": args.layers})
    if space.name == "darts":
        options["auxiliary"] = True
    size = 32 if args.image_size is None else integer(args.image_size, "--image-size", minimum=1,
                                                       maximum=INFO_LIMITS["image_size"])
    params, flops = params_and_flops(lambda: space.network(genotype, **options), (1, 3, size, size))
    out = {"space": space.name, "genotype": space.to_string(genotype), "params": params, "flops": flops}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"genotype {out['genotype']}\nparams   {out['params']:,} ({out['params'] / 1e6:.3f} M)\n"
              f"flops    {out['flops']:,} ({out['flops'] / 1e6:.2f} M)")
    return 0


def cmd_show(args) -> int:
    from archsearch.checks import output_file
    from archsearch.report.draw import draw_cells
    from archsearch.spaces import get_space

    space = get_space(args.space)
    genotype = space.from_string(args.arch)
    draw_cells(space, genotype, output_file(args.out, "--out"))
    print(f"wrote {args.out}")
    return 0


# -- training ------------------------------------------------------------------------------------
def _train_resume_changes(args) -> dict:
    """``train --resume DIR [key=value ...] [--epochs N ...]``: what the resumed run is asked to change
    (the run's own settings come from its config.yaml; resume_train refuses what may not change)."""
    from archsearch.checks import read_value
    from archsearch.search.config import parse_key_values

    if args.out is not None:
        raise _Usage("--resume continues the run in its own directory; --out is for a new run")
    items = list(args.overrides)
    changes = {}
    if args.arch is not None:
        key = args.arch.partition("=")[0]
        if "=" in args.arch and key.isidentifier():  # a key=value where the architecture would stand
            items.insert(0, args.arch)
        else:
            changes["genotype"] = args.arch
    changes.update({key: read_value(key, value) for key, value in parse_key_values(items).items()})
    flags = {"space": args.space, "dataset": args.data, "data_dir": args.data_dir, "epochs": args.epochs,
             "limit_train": args.limit_train, "limit_test": args.limit_test, "seed": args.seed}
    changes.update({k: v for k, v in flags.items() if v is not None})
    network = {k: v for k, v in (("C", args.C), ("N", args.N), ("layers", args.layers)) if v is not None}
    if network:
        changes["network"] = network
    if args.recipe is not None:
        changes["name"] = args.recipe
    if args.deterministic:
        changes["deterministic"] = True
    return changes


def cmd_train(args) -> int:
    from archsearch.checks import coerce
    from archsearch.evaluate import get_recipe, train
    from archsearch.search.config import parse_key_values
    from archsearch.spaces import get_space

    if args.resume:
        from archsearch.evaluate.train import resume_train

        result = resume_train(args.resume, _train_resume_changes(args), device=args.device, quiet=args.quiet)
        print(f"test accuracy {result['test_accuracy']:.2f}% ({result['params']:,} params, "
              f"{result['flops']:,} FLOPs); run directory {args.resume}")
        return 0
    if args.arch is None:
        raise _Usage("train needs an architecture (or --resume DIR)")
    args.space = "nb201" if args.space is None else args.space
    args.data = "digits" if args.data is None else args.data
    args.seed = 0 if args.seed is None else args.seed
    space = get_space(args.space)
    overrides = parse_key_values(args.overrides)  # text: the recipe reads each value as its field's type
    if "name" in overrides:
        raise ConfigError("'name' names the recipe; choose a recipe with --recipe")
    if args.epochs is not None:
        _set_once(overrides, "epochs", args.epochs, "--epochs")
    network = {k: v for k, v in (("C", args.C), ("N", args.N), ("layers", args.layers)) if v is not None}
    if network:
        given = coerce("network", dict, overrides.get("network", {}))
        for key in network:
            if key in given:
                raise ConfigError(f"network {key} is given twice (--{key} and network=...)")
        overrides["network"] = {**given, **network}
    recipe = get_recipe(space.name if args.recipe is None else args.recipe, **overrides)
    out = (_out_path(args.out) if args.out is not None
           else Path("runs") / f"train-{space.name}-{args.data}-seed{args.seed}")
    result = train(space.from_string(args.arch), space, args.data, recipe, out_dir=out, seed=args.seed,
                   device=args.device, quiet=args.quiet, resume=False,
                   deterministic=args.deterministic, data_dir=args.data_dir, limit_train=args.limit_train,
                   limit_test=args.limit_test)
    print(f"test accuracy {result['test_accuracy']:.2f}% ({result['params']:,} params, "
          f"{result['flops']:,} FLOPs); run directory {out}")
    return 0


def _set_once(overrides: dict, key: str, value, flag: str) -> None:
    if key in overrides:
        raise ConfigError(f"'{key}' is given twice ({flag} and {key}=...); give it once")
    overrides[key] = value


def _out_path(text: str) -> Path:
    if not text.strip():
        raise ConfigError("--out is empty; give the run directory")
    return Path(text)


# -- differentiable search ---------------------------------------------------------------------
def _search_config(args):
    from archsearch.search.config import parse_key_values
    from archsearch.search.resolve import resolve_config

    overrides = parse_key_values(args.overrides)
    for key in ("space", "method", "data", "data_dir", "epochs", "seed", "early_stop"):
        value = getattr(args, key)
        if value is not None:
            _set_once(overrides, key, value, f"--{key.replace('_', '-')}")
    if args.deterministic:
        overrides["deterministic"] = True
    return resolve_config(overrides.pop("method", None), args.config, overrides)


def _search_resume_changes(args) -> dict:
    """``search --resume DIR [key=value ...]``: what the resumed run is asked to change (run_search refuses
    what may not change)."""
    from archsearch.search.config import parse_key_values

    if args.config:
        raise _Usage("--config starts a new run; --resume continues one (with key=value changes)")
    if args.out is not None:
        raise _Usage("--resume continues the run in its own directory; --out is for a new run")
    changes = parse_key_values(args.overrides)
    for key in ("space", "method", "data", "data_dir", "epochs", "seed", "early_stop"):
        value = getattr(args, key)
        if value is not None:
            _set_once(changes, key, value, f"--{key.replace('_', '-')}")
    if args.deterministic:
        changes["deterministic"] = True
    return changes


def _default_out(config) -> Path:
    import time

    return Path("runs") / f"{config.method}-{config.space}-{config.data}-seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_search(args) -> int:
    from archsearch.search.runner import run_search

    if args.resume:
        summary = run_search(resume=args.resume, changes=_search_resume_changes(args), quiet=args.quiet)
    else:
        config = _search_config(args)
        summary = run_search(config, _default_out(config) if args.out is None else _out_path(args.out),
                             quiet=args.quiet)
    _report_search(summary)
    return 0


def _report_search(summary: dict) -> None:
    print(f"method     {summary['method']} on {summary['space']}")
    print(f"genotype   {summary['genotype']}")
    if summary.get("stopped_early"):
        print(f"stopped    {summary['stopped_early']}")
    truth = summary.get("ground_truth")
    if truth:
        print(f"NB201 #{truth['index']}: " + ", ".join(
            f"{name} {truth[name]['valid']:.2f} valid / {truth[name]['test']:.2f} test"
            for name in NB201_DATASETS))
    if summary.get("train"):
        train = summary["train"]
        print(f"trained    {train['epochs']} epochs on {train['dataset']}: test accuracy {train['test_accuracy']:.2f}%")
    print(f"run        {summary['out_dir']}")


def cmd_demo(args) -> int:
    """``make demo``: the default search on NB201 over the embedded digits, then a brief training."""
    from archsearch.search.runner import demo_config, run_search

    config = demo_config()
    out = _default_out(config) if args.out is None else _out_path(args.out)
    print(f"searching NAS-Bench-201 with {config.method} on {config.data} "
          f"({config.epochs} epochs, C={config.C}, N={config.N}); run directory {out}")
    _report_search(run_search(config, out, quiet=args.quiet))
    return 0


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archsearch", description="Neural architecture search in PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("spaces", help="list the search spaces")
    p.set_defaults(func=cmd_spaces)
    p = sub.add_parser("methods", help="list the differentiable search methods (presets)")
    p.set_defaults(func=cmd_methods)

    nb = sub.add_parser("nb201", help="NAS-Bench-201 ground truth, offline")
    nb_sub = nb.add_subparsers(dest="nb201_command", metavar="SUBCOMMAND", parser_class=_Parser)
    nb_sub.required = True
    p = nb_sub.add_parser("query", help="accuracies, params and FLOPs of one cell")
    p.add_argument("arch", help="arch string '|op~0|+|op~0|op~1|+|...|' or the benchmark index")
    p.add_argument("--dataset", default="cifar10", help=" | ".join(NB201_DATASETS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_nb201_query)

    p = sub.add_parser("info", help="parameters and FLOPs of an architecture's network")
    p.add_argument("arch", help="arch string, NB201 index, DARTS Genotype(...) or published name")
    p.add_argument("--space", default="nb201")
    p.add_argument("--num-classes", type=int, default=None, help="classes of the classifier (10)")
    p.add_argument("--C", type=int, default=None, help="channels (NB201 16, DARTS 36)")
    p.add_argument("--N", type=int, default=None, help="NB201 cells per stage (5)")
    p.add_argument("--layers", type=int, default=None, help="DARTS cells (20)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("show", help="draw a cell as a graph")
    p.add_argument("arch", help="arch string, NB201 index, DARTS Genotype(...) or published name")
    p.add_argument("--space", default="nb201")
    p.add_argument("--out", default="cell.png")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("train", help="train an architecture from scratch with a paper's recipe",
                       description="key=value overrides any recipe field (lr=0.05 batch_size=128 ...); "
                                   "with --resume DIR, the changes a resumed run may take (epochs=, lr=, ...).")
    p.add_argument("arch", nargs="?", help="the architecture (taken from the run with --resume)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--space", default=None, help="nb201 | darts (default nb201)")
    p.add_argument("--data", default=None, help="default digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--recipe", default=None, help="nb201 | darts (default: the space's)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--C", type=int, default=None)
    p.add_argument("--N", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-test", type=int, default=None)
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--device", default=None)
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR (key=value: changes)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("search", help="differentiable architecture search",
                       description="Run a method preset; key=value overrides any configuration key.")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--space", default=None)
    p.add_argument("--method", default=None, help="a preset from 'archsearch methods'")
    p.add_argument("--data", default=None, help="digits | cifar10 | cifar100 | imagefolder | synthetic")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="run directory (default runs/<method>-<space>-...)")
    p.add_argument("--config", default=None, help="a YAML config (a run's config.yaml reproduces it)")
    p.add_argument("--early-stop", default=None, help="early-stopping rule(s), e.g. dartsplus or rdarts")
    p.add_argument("--deterministic", action="store_true", help="bit-for-bit repeatable (slower)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR; key=value changes what may change (docs/reliability.md)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("demo", help="a real search on the embedded digits dataset (a few minutes)")
    p.add_argument("--out", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    for name, module, adder, runner, text in _EXTENSIONS:
        try:
            mod = __import__(module, fromlist=[adder])
        except ImportError:
            continue
        p = sub.add_parser(name, help=text)
        getattr(mod, adder)(p)
        p.set_defaults(func=getattr(mod, runner))
    return parser


#: subcommands whose logic lives in a library module: (name, module, add-arguments, main, help)
_EXTENSIONS = [
    ("bench", "archsearch.bench", "add_bench_arguments", "bench_main",
     "black-box search strategies on tabular ground truth, across seeds"),
    ("proxies", "archsearch.zero_cost", "add_proxies_arguments", "proxies_main",
     "score architectures with training-free proxies and correlate with ground truth"),
    ("zero-cost", "archsearch.zero_cost", "add_zero_cost_arguments", "zero_cost_main",
     "the zero-cost NAS baseline: sample, rank by a proxy, report the pick"),
    ("optbench", "archsearch.optbench", "add_optbench_arguments", "optbench_main",
     "local vs global optimizers on synthetic multimodal functions"),
]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # key=value overrides may come anywhere on the line, also after options (argparse stops
        # filling a positional list at the first option)
        if extra and hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:  # --help, or an argument error already printed in one line
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except ArchSearchError as err:
        print(f"archsearch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

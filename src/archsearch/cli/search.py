"""``methods``, ``search`` and ``demo``: differentiable architecture search."""

from __future__ import annotations

from pathlib import Path

from archsearch.cli.common import Usage, add_watch_flags, console_of, out_path, set_once
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS

#: flags of ``search`` that stand for a configuration key of the same name
_KEY_FLAGS = ("space", "method", "data", "data_dir", "epochs", "seed", "early_stop")


def cmd_methods(args) -> int:
    from archsearch.search import METHODS

    for name, method in METHODS.items():
        print(f"{name:12s} {method.summary}\n{'':12s} [{method.paper}]")
    return 0


def _flag_keys(args, into: dict) -> dict:
    for key in _KEY_FLAGS:
        value = getattr(args, key)
        if value is not None:
            set_once(into, key, value, f"--{key.replace('_', '-')}")
    if args.deterministic:
        into["deterministic"] = True
    return into


def _search_config(args):
    from archsearch.search.config import parse_key_values
    from archsearch.search.resolve import resolve_config

    overrides = _flag_keys(args, parse_key_values(args.overrides))
    return resolve_config(overrides.pop("method", None), args.config, overrides)


def _resume_changes(args) -> dict:
    """``search --resume DIR [key=value ...]``: what the resumed run is asked to change (run_search refuses
    what may not change)."""
    from archsearch.search.config import parse_key_values

    if args.config:
        raise Usage("--config starts a new run; --resume continues one (with key=value changes)")
    if args.out is not None:
        raise Usage("--resume continues the run in its own directory; --out is for a new run")
    return _flag_keys(args, parse_key_values(args.overrides))


def _default_out(config) -> Path:
    import time

    return Path("runs") / f"{config.method}-{config.space}-{config.data}-seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_search(args) -> int:
    from archsearch.search.runner import run_search

    console = console_of(args)
    if args.resume:
        summary = run_search(resume=args.resume, changes=_resume_changes(args), console=console,
                             tensorboard=args.tensorboard)
    else:
        config = _search_config(args)
        summary = run_search(config, _default_out(config) if args.out is None else out_path(args.out),
                             console=console, tensorboard=args.tensorboard)
    _report(summary, console)
    return 0


def _report(summary: dict, console) -> None:
    if console.mode == "json":
        console.result(summary)
        return
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

    config, console = demo_config(), console_of(args)
    out = _default_out(config) if args.out is None else out_path(args.out)
    if console.mode != "json":
        print(f"searching NAS-Bench-201 with {config.method} on {config.data} "
              f"({config.epochs} epochs, C={config.C}, N={config.N}); run directory {out}", flush=True)
    _report(run_search(config, out, console=console, tensorboard=args.tensorboard), console)
    return 0


def add_methods(sub) -> None:
    p = sub.add_parser("methods", help="list the differentiable search methods (presets)")
    p.set_defaults(func=cmd_methods)


def add_search(sub) -> None:
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
    add_watch_flags(p)
    p.set_defaults(func=cmd_search)


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="a real search on the embedded digits dataset (a few minutes)")
    p.add_argument("--out", default=None)
    add_watch_flags(p)
    p.set_defaults(func=cmd_demo)

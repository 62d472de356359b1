"""``methods``, ``search`` and ``demo``: differentiable architecture search."""

from __future__ import annotations

from pathlib import Path

from archsearch.cli.common import Usage, add_watch_flags, console_of, flag_overrides, out_path
from archsearch.groundtruth.nb201_datasets import DATASETS as NB201_DATASETS

#: flags of ``search`` (and ``config``) that stand for a configuration key of the same name, and their types
_KEY_FLAGS = {"space": str, "method": str, "data": str, "data_dir": str, "epochs": int, "seed": int, "C": int,
              "N": int, "layers": int, "limit_train": int, "device": str, "early_stop": str, "deterministic": bool}


def add_key_flags(p, *, method: bool = True) -> None:
    """``--KEY`` for each key of _KEY_FLAGS, with the key's meaning and default from SearchConfig."""
    from archsearch.cli.common import flow_text
    from archsearch.search.config import MEANINGS, SearchConfig

    defaults = SearchConfig().to_dict()
    for key, kind in _KEY_FLAGS.items():
        if key == "method" and not method:
            continue
        flag = "--" + key.replace("_", "-")
        shown_default = "" if defaults[key] is None or defaults[key] is False else f" (default {flow_text(defaults[key])})"
        text = f"{key}=: {MEANINGS[key]}{shown_default}"
        if kind is bool:
            p.add_argument(flag, action="store_true", help=text.replace(f"{key}=:", f"{key}=true:"))
        else:
            p.add_argument(flag, dest=key, type=kind, default=None, help=text)


def cmd_methods(args) -> int:
    from archsearch.search.methods import METHODS

    for name, method in METHODS.items():
        print(f"{name:12s} {method.summary}\n{'':12s} [{method.paper}]")
    return 0


def key_overrides(args) -> dict:
    """The key=value items and the key flags given, as one mapping; a key given both ways is refused."""
    from archsearch.search.config import parse_key_values

    return flag_overrides(args, {key: key for key in _KEY_FLAGS if hasattr(args, key)},
                          parse_key_values(args.overrides))


def _search_config(args):
    from archsearch.search.resolve import resolve_config

    overrides = key_overrides(args)
    return resolve_config(overrides.pop("method", None), args.config, overrides)


def _resume_changes(args) -> dict:
    """``search --resume DIR [key=value ...]``: what the resumed run is asked to change (run_search refuses
    what may not change)."""
    if args.config:
        raise Usage("--config starts a new run; --resume continues one (with key=value changes)")
    if args.out is not None:
        raise Usage("--resume continues the run in its own directory; --out is for a new run")
    return key_overrides(args)


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
                       description="Run a method preset; key=value overrides any configuration key. The defaults "
                                   "shown are SearchConfig's; a method's preset sets some of its own "
                                   "('archsearch config METHOD' shows them all).")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="any configuration key ('archsearch config METHOD' lists them), also after options")
    add_key_flags(p)
    p.add_argument("--out", default=None, help="run directory (default runs/<method>-<space>-...)")
    p.add_argument("--config", default=None, help="a YAML config (a run's config.yaml reproduces it)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR; key=value changes what may change (docs/reliability.md)")
    add_watch_flags(p)
    p.set_defaults(func=cmd_search)


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="a real search on the embedded digits dataset (a few minutes)")
    p.add_argument("--out", default=None, help="run directory (default runs/<method>-<space>-...)")
    add_watch_flags(p)
    p.set_defaults(func=cmd_demo)

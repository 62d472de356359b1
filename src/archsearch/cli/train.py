"""``train``: an architecture trained from scratch with a paper's recipe, or a training run resumed."""

from __future__ import annotations

from pathlib import Path

from archsearch.cli.common import Usage, add_watch_flags, console_of, out_path, set_once
from archsearch.errors import ConfigError


def _resume_changes(args) -> dict:
    """``train --resume DIR [key=value ...] [--epochs N ...]``: what the resumed run is asked to change
    (the run's own settings come from its config.yaml; resume_train refuses what may not change)."""
    from archsearch.settings import read_value
    from archsearch.search.config import parse_key_values

    if args.out is not None:
        raise Usage("--resume continues the run in its own directory; --out is for a new run")
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
    from archsearch.settings import coerce
    from archsearch.evaluate import get_recipe, train
    from archsearch.search.config import parse_key_values
    from archsearch.spaces import get_space

    if args.resume:
        from archsearch.evaluate.train import resume_train

        result = resume_train(args.resume, _resume_changes(args), device=args.device, console=console_of(args),
                              tensorboard=args.tensorboard)
        _report(result, args.resume, args)
        return 0
    if args.arch is None:
        raise Usage("train needs an architecture (or --resume DIR)")
    args.space = "nb201" if args.space is None else args.space
    args.data = "digits" if args.data is None else args.data
    args.seed = 0 if args.seed is None else args.seed
    space = get_space(args.space)
    overrides = parse_key_values(args.overrides)  # text: the recipe reads each value as its field's type
    if "name" in overrides:
        raise ConfigError("'name' names the recipe; choose a recipe with --recipe")
    if args.epochs is not None:
        set_once(overrides, "epochs", args.epochs, "--epochs")
    network = {k: v for k, v in (("C", args.C), ("N", args.N), ("layers", args.layers)) if v is not None}
    if network:
        given = coerce("network", dict, overrides.get("network", {}))
        for key in network:
            if key in given:
                raise ConfigError(f"network {key} is given twice (--{key} and network=...)")
        overrides["network"] = {**given, **network}
    recipe = get_recipe(space.name if args.recipe is None else args.recipe, **overrides)
    out = (out_path(args.out) if args.out is not None
           else Path("runs") / f"train-{space.name}-{args.data}-seed{args.seed}")
    result = train(space.from_string(args.arch), space, args.data, recipe, out_dir=out, seed=args.seed,
                   device=args.device, resume=False, deterministic=args.deterministic, data_dir=args.data_dir,
                   limit_train=args.limit_train, limit_test=args.limit_test, console=console_of(args),
                   tensorboard=args.tensorboard)
    _report(result, out, args)
    return 0


def _report(result: dict, out, args) -> None:
    if args.json:
        console_of(args).result({**{k: v for k, v in result.items() if k != "history"}, "out_dir": str(out)})
    else:
        print(f"test accuracy {result['test_accuracy']:.2f}% ({result['params']:,} params, "
              f"{result['flops']:,} FLOPs); run directory {out}")


def add_train(sub) -> None:
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
    add_watch_flags(p)
    p.set_defaults(func=cmd_train)

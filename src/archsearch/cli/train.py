"""``train``: an architecture trained from scratch with a paper's recipe, or a training run resumed."""

from __future__ import annotations

from pathlib import Path

from archsearch.cli.common import Usage, add_watch_flags, console_of, flag_overrides, is_override, out_path
from archsearch.errors import ConfigError, did_you_mean, shown

#: the run's own settings beside the recipe (config.yaml's keys, as a resume takes them), with their types
#: and the value of a new run where none is given; ``device`` is where this process trains, never saved
RUN_SETTINGS = {"space": (str, "nb201"), "dataset": (str, "digits"), "data_dir": (str | None, None),
                "limit_train": (int | None, None), "limit_test": (int | None, None), "seed": (int, 0),
                "deterministic": (bool, False), "device": (str | None, None)}
#: train's flags and the run setting or recipe field each stands for
_FLAGS = {"space": "space", "data": "dataset", "data_dir": "data_dir", "limit_train": "limit_train",
          "limit_test": "limit_test", "seed": "seed", "deterministic": "deterministic", "device": "device",
          "epochs": "epochs"}
#: flags that set a key of the recipe's ``network`` (the options of space.network)
_NETWORK_FLAGS = ("C", "N", "layers")


def _words(args) -> tuple[str | None, list[str]]:
    """The architecture and the key=value items, wherever each stands on the line."""
    words = ([] if args.arch is None else [args.arch]) + list(args.overrides)
    archs = [word for word in words if not is_override(word)]
    if len(archs) > 1:
        raise Usage(f"train takes one architecture, got {shown(archs[0])} and {shown(archs[1])} "
                    "(settings are written key=value)")
    return (archs[0] if archs else None), [word for word in words if is_override(word)]


def _settings(args, items: list[str], resume: bool) -> tuple[dict, dict]:
    """(run settings, recipe fields) from key=value items and flags; a key given both ways is refused.
    Run settings are typed here; recipe fields stay text for the recipe to read as its fields' types."""
    from archsearch.evaluate.recipes import Recipe
    from archsearch.search.config import parse_key_values
    from archsearch.settings import coerce

    given = flag_overrides(args, _FLAGS, parse_key_values(items))
    if "name" in given:
        raise ConfigError("'name' names the recipe; choose a recipe with --recipe")
    fields = [name for name in Recipe.__dataclass_fields__ if name != "name"]
    known = [*RUN_SETTINGS, *fields, *(["genotype"] if resume else [])]
    unknown = [key for key in given if key not in known]
    if unknown:
        raise ConfigError(f"unknown setting {shown(unknown[0])}{did_you_mean(unknown[0], known, n=5)} "
                          f"(recipe fields: {', '.join(fields)}; run settings: {', '.join(RUN_SETTINGS)})")
    network = {key: getattr(args, key) for key in _NETWORK_FLAGS if getattr(args, key) is not None}
    if network:
        written = coerce("network", dict, given.get("network", {}))
        for key in network:
            if key in written:
                raise ConfigError(f"network {key} is given twice (--{key} and network=...); give it once")
        given["network"] = {**written, **network}
    run = {key: coerce(key, RUN_SETTINGS[key][0], given.pop(key)) for key in list(given) if key in RUN_SETTINGS}
    return run, given


def _resume(args, arch: str | None, items: list[str]) -> int:
    """``train --resume DIR [key=value ...]``: the run's own settings come from its config.yaml; the line
    says what changes (resume_train refuses what may not)."""
    from archsearch.evaluate.train import resume_train

    if args.out is not None:
        raise Usage("--resume continues the run in its own directory; --out is for a new run")
    run, changes = _settings(args, items, resume=True)
    device = run.pop("device", None)
    changes.update(run)
    if arch is not None:
        changes["genotype"] = arch
    if args.recipe is not None:
        changes["name"] = args.recipe
    result = resume_train(args.resume, changes, device=device, console=console_of(args),
                          tensorboard=args.tensorboard)
    _report(result, args.resume, args)
    return 0


def cmd_train(args) -> int:
    from archsearch.evaluate import get_recipe, train
    from archsearch.spaces import get_space

    arch, items = _words(args)
    if args.resume:
        return _resume(args, arch, items)
    if arch is None:
        raise Usage("train needs an architecture (or --resume DIR)")
    given, fields = _settings(args, items, resume=False)
    run = {key: given.get(key, default) for key, (_, default) in RUN_SETTINGS.items()}
    space = get_space(run["space"])
    recipe = get_recipe(space.name if args.recipe is None else args.recipe, **fields)
    out = (out_path(args.out) if args.out is not None
           else Path("runs") / f"train-{space.name}-{run['dataset']}-seed{run['seed']}")
    result = train(space.from_string(arch), space, run["dataset"], recipe, out_dir=out, seed=run["seed"],
                   device=run["device"], resume=False, deterministic=run["deterministic"],
                   data_dir=run["data_dir"], limit_train=run["limit_train"], limit_test=run["limit_test"],
                   console=console_of(args), tensorboard=args.tensorboard)
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
                       description="key=value sets any recipe field (lr=0.05 batch_size=128 ...) or run setting "
                                   "(seed=1 limit_train=512 ...), anywhere on the line; with --resume DIR (and "
                                   "nothing else needed), the changes a resumed run may take (epochs=, lr=, ...).")
    p.add_argument("arch", nargs="?", help="the architecture (taken from the run with --resume)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="a recipe field or run setting (space, dataset, data_dir, limit_train, limit_test, seed, "
                        "deterministic, device), also after options")
    p.add_argument("--space", default=None, help="space= (default nb201)")
    p.add_argument("--data", default=None, help="dataset= (default digits)")
    p.add_argument("--data-dir", default=None, help="data_dir=, where the dataset lies")
    p.add_argument("--recipe", default=None, help="nb201 | darts | nasnet | enas-macro (default: the space's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs= of the recipe")
    p.add_argument("--C", type=int, default=None, help="network={C: ...}: initial channels")
    p.add_argument("--N", type=int, default=None, help="network={N: ...}: cells per stage (NB201, NASNet)")
    p.add_argument("--layers", type=int, default=None, help="network={layers: ...}: DARTS cells")
    p.add_argument("--limit-train", type=int, default=None, help="limit_train=, a seeded subset of the training set")
    p.add_argument("--limit-test", type=int, default=None, help="limit_test=, a seeded subset of the test set")
    p.add_argument("--seed", type=int, default=None, help="seed= (default 0)")
    p.add_argument("--device", default=None, help="device=, a torch device (default: CUDA when present, else CPU)")
    p.add_argument("--deterministic", action="store_true", help="deterministic=true: bit-for-bit repeatable")
    p.add_argument("--out", default=None, help="run directory (default runs/train-<space>-<data>-seed<seed>)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR (key=value: changes)")
    add_watch_flags(p)
    p.set_defaults(func=cmd_train)

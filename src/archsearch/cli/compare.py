"""``compare``: differentiable search methods over seeds as NAS-Bench-201's Table 5, or finished runs
tabulated (``--runs``)."""

from __future__ import annotations

import sys

from archsearch.cli.common import Usage, set_once

#: flags that stand for a configuration key of the same name, applied to every run
_KEY_FLAGS = ("space", "data", "data_dir", "epochs")


def add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="several search methods over several seeds, as the NAS-Bench-201 paper's table",
        description="Run each (method, seed) into OUT/<method>-seed<k>/ (a re-run skips finished runs and "
                    "resumes the others) and tabulate them; or, with --runs, tabulate finished runs only. "
                    "key=value overrides any configuration key of every run.")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--methods", default=None, help="comma-separated methods from 'archsearch methods'")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                   help="tabulate these run directories (or folders of them, e.g. a compare's --out); runs nothing")
    p.add_argument("--out", default=None, help="study folder (required to run; with --runs: where to write the table)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=1, help="runs side by side on local workers (default 1)")
    where.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="run on Ray: 'auto', 'ray://host:10001', or 'local' to start one here")
    p.add_argument("--executor", default="process", choices=["process", "thread"],
                   help="local workers with --jobs N (default process)")
    p.add_argument("--space", default=None, help="search space of every run (default: each method's)")
    p.add_argument("--data", default=None, help="digits | cifar10 | cifar100 | imagefolder | synthetic")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="print the table only")
    p.set_defaults(func=cmd_compare)


def _overrides(args) -> dict:
    from archsearch.search.config import parse_key_values

    overrides = parse_key_values(args.overrides)
    for key in _KEY_FLAGS:
        value = getattr(args, key)
        if value is not None:
            set_once(overrides, key, value, f"--{key.replace('_', '-')}")
    return overrides


def cmd_compare(args) -> int:
    from archsearch.studies.compare import compare_runs, run_compare
    from archsearch.studies.compare_table import markdown

    if args.runs is not None:
        given = [f for f, v in (("--methods", args.methods), ("--seeds", args.seeds), ("key=value", args.overrides),
                                *((f"--{k.replace('_', '-')}", getattr(args, k)) for k in _KEY_FLAGS)) if v]
        if given:
            raise Usage(f"--runs tabulates finished runs; {given[0]} is for running them (drop one)")
        table = compare_runs(args.runs, args.out)
    else:
        needed = (("--methods", args.methods), ("--seeds", args.seeds), ("--out", args.out))
        missing = [flag for flag, value in needed if value is None]
        if missing:
            raise Usage(f"compare needs {', '.join(missing)} (or --runs DIR ... to tabulate finished runs)")
        table = run_compare(args.methods, args.seeds, args.out, _overrides(args), jobs=args.jobs,
                            ray_address=args.ray, executor=args.executor, quiet=args.quiet)
    print(markdown(table), end="", flush=True)
    if args.out is not None and not args.quiet:
        print(f"wrote {args.out}/compare.md, compare.csv and compare.json")
    if not table["complete"]:
        missing = sum(r["status"] not in ("done", "no cell") for r in table["runs"])
        print(f"archsearch: error: {missing} of {len(table['runs'])} runs failed or have no result "
              "(see the notes above)", file=sys.stderr)
        return 2
    return 0

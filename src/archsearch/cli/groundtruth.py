"""``spaces``, ``nb201 query``, ``info`` and ``show``: what the spaces hold and what a cell is."""

from __future__ import annotations

import json

from archsearch.cli.common import Parser
from archsearch.groundtruth.nb201_datasets import NAMES as NB201_NAMES

#: the largest network sizes ``info`` measures: beyond them building the network, even on the meta device,
#: takes minutes
INFO_LIMITS = {"num_classes": 1_000_000, "C": 4096, "N": 100, "layers": 300, "image_size": 4096}


def cmd_spaces(args) -> int:
    # imports torch: a space is the class that builds its networks (spaces/base.py), and the listing counts
    # the ops and genotypes of an instance, so there is no data-only registry to read
    from archsearch.spaces import SPACES

    for name, cls in SPACES.items():
        space = cls()
        size = space.size()
        print(f"{name:8s} {len(space.ops)} ops, {size if size is not None else 'not enumerable'} genotypes: "
              f"{(cls.__doc__ or '').strip().splitlines()[0]}")
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
    from archsearch.settings import keyword_options
    from archsearch.spaces import get_space

    space = get_space(args.space)
    genotype = space.from_string(args.arch)
    options = _network_options(space, {"num_classes": args.num_classes, "C": args.C, "N": args.N,
                                       "layers": args.layers})
    if "auxiliary" in keyword_options(space.network):  # the size of the network as trained (DARTS: with its head)
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


def add_spaces(sub) -> None:
    p = sub.add_parser("spaces", help="list the search spaces")
    p.set_defaults(func=cmd_spaces)


def add_nb201(sub) -> None:
    nb = sub.add_parser("nb201", help="NAS-Bench-201 ground truth, offline")
    nb_sub = nb.add_subparsers(dest="nb201_command", metavar="SUBCOMMAND", parser_class=Parser)
    nb_sub.required = True
    p = nb_sub.add_parser("query", help="accuracies, params and FLOPs of one cell")
    p.add_argument("arch", help="arch string '|op~0|+|op~0|op~1|+|...|' or the benchmark index")
    p.add_argument("--dataset", default="cifar10", help=" | ".join(NB201_NAMES))
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_nb201_query)


def add_info(sub) -> None:
    sub.add_parser("info", help="parameters and FLOPs of an architecture's network", arguments=_info_arguments)


def _info_arguments(p) -> None:  # the defaults come from the spaces, which import torch
    from archsearch.spaces.darts import DartsSpace
    from archsearch.spaces.nb201 import NB201Space

    nb201, darts = NB201Space.network_defaults, DartsSpace.network_defaults
    p.add_argument("arch", help="arch string, NB201 index, DARTS/NASNet Genotype(...) or published name")
    p.add_argument("--space", default="nb201", help="nb201 | darts | nasnet | enas-macro")
    p.add_argument("--num-classes", type=int, default=None, help="classes of the classifier (10)")
    p.add_argument("--C", type=int, default=None,
                   help=f"channels (NB201 {nb201['C']}, DARTS {darts['C']}, NASNet: F of the cell's paper, "
                        "enas-macro 96)")
    p.add_argument("--N", type=int, default=None,
                   help=f"cells per stage (NB201 {nb201['N']}, NASNet: the cell's paper's)")
    p.add_argument("--layers", type=int, default=None, help=f"DARTS cells ({darts['layers']})")
    p.add_argument("--image-size", type=int, default=None, help="side of the input image (32)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_info)


def add_show(sub) -> None:
    p = sub.add_parser("show", help="draw a cell as a graph")
    p.add_argument("arch", help="arch string, NB201 index, DARTS/NASNet Genotype(...) or published name")
    p.add_argument("--space", default="nb201", help="nb201 | darts | nasnet | enas-macro")
    p.add_argument("--out", default="cell.png", help="the PNG to write")
    p.set_defaults(func=cmd_show)

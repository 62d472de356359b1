"""``config``: the resolved configuration of a search, key by key, with defaults and meanings; no torch."""

from __future__ import annotations

import json

from archsearch.cli.common import flow_text, is_override, set_once
from archsearch.cli.search import add_key_flags, key_overrides


def cmd_config(args) -> int:
    from archsearch.search.config import MEANINGS, SearchConfig, layered_config

    if args.method is not None and is_override(args.method):  # no method named, only key=value
        args.overrides, args.method = [args.method, *args.overrides], None
    method, args.method = args.method, None  # the positional METHOD, not a --method flag
    overrides = key_overrides(args)
    if method is not None:
        set_once(overrides, "method", method, "METHOD")
    config = layered_config(overrides.pop("method", None), args.config, overrides)
    defaults = SearchConfig().to_dict()
    values = config.to_dict()
    if args.json:
        print(json.dumps({key: {"value": values[key], "default": defaults[key], "meaning": MEANINGS[key]}
                          for key in values}, default=str))
        return 0
    rows = [(key, flow_text(values[key]), flow_text(defaults[key]), MEANINGS[key]) for key in values]
    widths = [max(len(row[i]) for row in rows + [("key", "value", "default")]) for i in range(3)]
    print(f"# method {config.method}: defaults, then the preset, then --config, then key=value "
          "(search checks the combination on top)")
    for row in [("key", "value", "default", "meaning"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def add_config(sub) -> None:
    p = sub.add_parser("config", help="print a method's resolved configuration: every key, value, default, meaning",
                       description="Resolves as search does (defaults -> the method's preset -> --config FILE -> "
                                   "key=value) and prints every configuration key with its value, its default "
                                   "and its meaning.")
    p.add_argument("method", nargs="?", default=None, help="a preset from 'archsearch methods' (default balenas)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="any configuration key, also after options")
    add_key_flags(p, method=False)
    p.add_argument("--config", default=None, help="a YAML config (a run's config.yaml)")
    p.add_argument("--json", action="store_true", help="one JSON object: {key: {value, default, meaning}}")
    p.set_defaults(func=cmd_config)

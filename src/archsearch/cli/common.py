"""What every command shares: the one-line error parser, usage errors, and small argument readers."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from archsearch.errors import ArchSearchError, ConfigError, shown


class Usage(ArchSearchError):
    """A combination of arguments the command does not take."""


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with its default, where it has one worth showing (not None, not
    an off switch) and the text does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or "default" in text
                or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
                or default == []):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """The command line's parser: one-line errors, defaults in --help, and arguments added on first use.

    ``arguments``: a function that adds the parser's arguments, called when the parser first parses or
    prints help, so that a command whose defaults come from torch-level modules costs nothing to the others.
    """

    def __init__(self, *args, arguments=None, formatter_class=DefaultsFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)
        self._pending_arguments = arguments

    def _add_pending_arguments(self) -> None:
        if self._pending_arguments is not None:
            add, self._pending_arguments = self._pending_arguments, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_pending_arguments()
        return super().parse_known_args(args, namespace)

    def format_usage(self):
        self._add_pending_arguments()
        return super().format_usage()

    def format_help(self):
        self._add_pending_arguments()
        return super().format_help()

    def error(self, message):  # one line, exit 2, as for every other bad input
        self.exit(2, f"archsearch: error: {message} (see '{self.prog} --help')\n")


def package_version() -> str:
    """The installed distribution's version; the source tree's own where it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("archsearch")
    except metadata.PackageNotFoundError:  # the package's own, loaded already as the parent of this one
        return getattr(sys.modules.get("archsearch"), "__version__", "unknown")


def flow_text(value) -> str:
    """A value as one word of flow YAML/JSON, as key=value takes it back (a plain string stays bare)."""
    import json

    if isinstance(value, str) and value and value.strip() == value and " " not in value:
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"), default=str)


def is_override(word: str) -> bool:
    """``key=value`` (a name before the first '='), as opposed to an architecture or another word."""
    return "=" in word and word.partition("=")[0].strip().isidentifier()


def flag_overrides(args, flags: dict[str, str], into: dict) -> dict:
    """Adds the flags given on the line (``{attribute: key}``) to the key=value overrides ``into``; a key
    given both ways is refused. A switch (store_true) counts where it is on."""
    for attribute, key in flags.items():
        value = getattr(args, attribute)
        if value is not None and value is not False:
            set_once(into, key, value, "--" + attribute.replace("_", "-"))
    return into


def set_once(overrides: dict, key: str, value, flag: str) -> None:
    """``overrides[key] = value`` for a flag, refused where key=value already gave it."""
    if key in overrides:
        raise ConfigError(f"'{key}' is given twice ({flag} and {key}=...); give it once")
    overrides[key] = value


def out_path(text: str) -> Path:
    if not text.strip():
        raise ConfigError("--out is empty; give the run directory")
    return Path(text)


def comma_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {shown(text)}") from None


def add_watch_flags(parser) -> None:
    """``--quiet``, ``--json`` and ``--tensorboard`` / ``--no-tensorboard`` of a command that runs epochs."""
    shown_as = parser.add_mutually_exclusive_group()
    shown_as.add_argument("--quiet", action="store_true", help="no progress: only the final summary")
    shown_as.add_argument("--json", action="store_true",
                          help="one JSON object per epoch and a final result object on stdout, nothing else")
    parser.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                        help="log to <run dir>/tensorboard (default: where tensorboard is installed)")


def console_of(args):
    """The Console the flags of add_watch_flags ask for."""
    from archsearch.utils.progress import Console

    return Console("json" if args.json else "quiet" if args.quiet else "lines")


def progress_printer(quiet: bool, label: str):
    """A ``progress(done, total)`` callback that prints about twenty lines with the time per item, or None."""
    if quiet:
        return None
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            rate = (time.perf_counter() - start) / done
            print(f"{label}: {done}/{total} ({rate:.2f} s each)", flush=True)

    return progress

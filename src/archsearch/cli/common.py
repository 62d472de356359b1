"""What every command shares: the one-line error parser, usage errors, and small argument readers."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from archsearch.errors import ArchSearchError, ConfigError, shown


class Usage(ArchSearchError):
    """A combination of arguments the command does not take."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        self.exit(2, f"archsearch: error: {message} (see '{self.prog} --help')\n")


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

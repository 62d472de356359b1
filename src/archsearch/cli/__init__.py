"""The ``archsearch`` command line: parses, builds objects from a config, calls the library.

One module per group of commands (``groundtruth``, ``search``, ``config``, ``train``, ``studies``,
``report``, ``compare``); ``common`` holds what they share. Every error a user can cause ends as one line on
stderr and exit code 2, no traceback. Building the parser imports no torch: commands whose arguments come from
torch-level modules add them on first use (``Parser(arguments=...)``), and each command imports what it runs
inside its function.
"""

from __future__ import annotations

import argparse
import sys

from archsearch.cli import compare, config, groundtruth, report, search, studies, train
from archsearch.cli.common import Parser, package_version
from archsearch.errors import ArchSearchError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="archsearch", description="Neural architecture search in PyTorch.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    groundtruth.add_spaces(sub)
    search.add_methods(sub)
    groundtruth.add_nb201(sub)
    groundtruth.add_info(sub)
    groundtruth.add_show(sub)
    train.add_train(sub)
    search.add_search(sub)
    config.add_config(sub)
    search.add_demo(sub)
    studies.add_studies(sub)
    report.add_report(sub)
    compare.add_compare(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # key=value overrides (and train's architecture) may come anywhere on the line, also after options
        # (argparse stops filling a positional list at the first option)
        if extra and hasattr(args, "overrides") and not any(item.startswith("-") for item in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:  # --help, or an argument error already printed in one line
        return exit_.code if isinstance(exit_.code, int) else 2
    from archsearch.checks import MADE_DIRS
    from archsearch.utils.rundir import remove_unused_dirs

    MADE_DIRS.start()  # a refused command leaves no empty output folder behind
    try:
        return int(args.func(args) or 0)
    except ArchSearchError as err:
        remove_unused_dirs(MADE_DIRS.stop())
        print(f"archsearch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        remove_unused_dirs(MADE_DIRS.stop())
        print("archsearch: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as err:
        if not out_of_memory(err):
            raise
        remove_unused_dirs(MADE_DIRS.stop())
        print(f"archsearch: error: out of memory ({_first_line(err)}); ask for less (a smaller batch_size, C, "
              "layers or N, fewer architectures at once); a search resumes from its last checkpoint with --resume",
              file=sys.stderr)
        return 2
    finally:
        MADE_DIRS.stop()


#: how the allocators word a refused allocation: PyTorch's CPU allocator, CUDA's and MPS's, and Python's own
_OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "not enough memory")


def out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or any(words in str(err).lower() for words in _OUT_OF_MEMORY)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    text = text.split("] err == 0. ")[-1]  # PyTorch's "[enforce fail at alloc_cpu.cpp:N] err == 0. " prefix
    return text if len(text) <= 160 else text[:157] + "..."

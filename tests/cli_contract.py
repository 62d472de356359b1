"""The command line's promise on bad input, as test helpers: exit code 2, exactly one line on stderr that
starts with 'archsearch: error:', no traceback; and the API's: only the package's own exception types."""

from __future__ import annotations

import contextlib
import io
import warnings

from archsearch.cli import main
from archsearch.errors import ArchSearchError

PREFIX = "archsearch: error:"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``archsearch argv`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a library warning on the way to a valid result is no error line
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors leave through SystemExit
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(argv: list[str], *fragments: str) -> str:
    """Run ``argv``, check the bad-input contract, return the message; ``fragments`` must all be in it."""
    code, _, err = run_cli(argv)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(PREFIX), (argv, code, err)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_ok_or_one_line_error(argv: list[str]) -> int:
    """Valid input runs (exit 0); anything else keeps the bad-input contract. Returns the exit code."""
    code, _, err = run_cli(argv)
    if code != 0:
        lines = err.splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(PREFIX), (argv, code, err)
    return code


def returns_or_raises_ours(call, *args, **kwargs):
    """``call(*args, **kwargs)``'s result, or None where it raised one of the package's errors; any other
    exception fails the test (its traceback says where it came from)."""
    try:
        return call(*args, **kwargs)
    except ArchSearchError:
        return None

"""What a running search or training shows while it runs, in one of three modes held by a ``Console``:

- ``"lines"`` (the default): tqdm bars on stderr with the running loss and accuracy, and one line per
  epoch on stdout (``epoch_line``), flushed, so that a run can be watched or piped to a log;
- ``"quiet"``: nothing (the command line still prints its final summary);
- ``"json"``: one JSON object per epoch on stdout (the metrics.jsonl record, ``"kind"`` and
  ``"eta_seconds"``) and a final ``{"kind": "result", ...}``; no bars, nothing else on stdout.

The search loop and the trainer are handed a Console; ``quiet=True`` stands for ``Console("quiet")``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys

from archsearch.errors import ConfigError, shown

MODES = ("lines", "quiet", "json")
#: the width past which an epoch's genotype goes on a second, indented line
LINE_WIDTH = 120
#: postfix refreshes of a bar: every this many steps (the figures are read from the meters then only)
POSTFIX_EVERY = 10
#: short names of the NAS-Bench-201 datasets in an epoch line
_SHORT = {"cifar10": "C10", "cifar100": "C100", "ImageNet16-120": "IN16"}


class Console:
    """Where a run's progress goes; ``mode`` is one of MODES."""

    def __init__(self, mode: str = "lines"):
        if not isinstance(mode, str) or mode not in MODES:
            raise ConfigError(f"unknown console mode {shown(mode)} (known: {', '.join(MODES)})")
        self.mode = mode

    @classmethod
    def of(cls, console: Console | None = None, quiet: bool = False) -> Console:
        """The console handed in, or the one ``quiet`` stands for (library callers pass ``quiet=``)."""
        if console is not None:
            if not isinstance(console, Console):
                raise ConfigError(f"console must be a Console, got {shown(console)}")
            return console
        return cls("quiet" if quiet else "lines")

    @property
    def bars(self) -> bool:
        """Whether progress bars (and the data loaders' own bars) are shown."""
        return self.mode == "lines"

    def bar(self, iterable, total: int, desc: str) -> Bar:
        return Bar(iterable, total, desc, enabled=self.bars)

    @contextlib.contextmanager
    def task(self, desc: str, total: int):
        """A bar for a long computation outside an epoch's steps; yields ``progress(done, total)``."""
        if not self.bars:
            yield lambda done, total: None
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, leave=False)

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            yield progress
        finally:
            bar.close()

    def epoch(self, kind: str, record: dict, total: int, eta: float | None) -> None:
        """An epoch's line, or its JSON object (``kind``: "search" or "train"; in JSON "search_epoch", ...)."""
        if self.mode == "json":
            self._print(json.dumps({**record, "kind": f"{kind}_epoch", "eta_seconds": eta}))
        elif self.mode == "lines":
            self._print(epoch_line(kind, record, total, eta))

    def result(self, result: dict) -> None:
        """A run's final object (JSON mode only: the command line words it otherwise)."""
        if self.mode == "json":
            self._print(json.dumps({"kind": "result", **result}))

    @staticmethod
    def _print(text: str) -> None:
        print(text, file=sys.stdout, flush=True)


class Bar:
    """An iterable's tqdm bar (stderr, erased when done) with a postfix of running figures; a plain
    pass-through when disabled."""

    def __init__(self, iterable, total: int, desc: str, enabled: bool):
        from tqdm.auto import tqdm

        self._bar = tqdm(iterable, total=total, desc=desc, leave=False, disable=not enabled)
        self.enabled = enabled

    def __iter__(self):
        return iter(self._bar)

    def postfix(self, step: int, figures) -> None:
        """Show ``figures()`` ({name: value}) every POSTFIX_EVERY steps: the call that reads them (and may
        wait for the device) is made only then."""
        if self.enabled and step % POSTFIX_EVERY == 0:
            self._bar.set_postfix({k: _short(v) for k, v in figures().items()}, refresh=False)


def _short(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def eta_seconds(history: list[dict], total: int) -> float | None:
    """The time left: the mean epoch time so far times the epochs left (None before the first epoch)."""
    times = [r["seconds"] for r in history if _finite(r.get("seconds"))]
    if not times or not history:
        return None
    done = history[-1].get("epoch", len(history))
    left = max(0, total - done) if isinstance(done, int) and not isinstance(done, bool) else 0
    return round(sum(times) / len(times) * left, 1)


def duration(seconds: float | None) -> str:
    """``12s``, ``4m05s``, ``1h02m``; ``?`` where unknown."""
    if not _finite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def epoch_line(kind: str, record: dict, total: int, eta: float | None) -> str:
    """One epoch of a search or a training (``kind``), for a person: epoch/total, train and valid loss and
    accuracy, lr (training), skip count and eigenvalue (search), time, ETA, then the genotype and its
    NAS-Bench-201 ground truth, on a second indented line where the first would grow past LINE_WIDTH."""
    parts = [f"{kind} epoch {record.get('epoch', '?')}/{total}"]
    for split in ("train", "valid"):
        loss, acc = record.get(f"{split}_loss"), record.get(f"{split}_acc")
        if acc is None and f"{split}_ppl" in record:  # a language model: perplexity, not accuracy
            parts.append(f"{split} {_number(loss, '.4f')} ppl {_number(record[f'{split}_ppl'], '.2f')}")
        elif _finite(loss) or _finite(acc):
            parts.append(f"{split} {_number(loss, '.4f')} {_number(acc, '.2f')}%")
    if "genotype" not in record and _finite(record.get("lr")):  # a training's schedule
        parts.append(f"lr {record['lr']:.5f}")
    if record.get("skip_count") is not None:
        parts.append(f"skips {record['skip_count']}")
    if _finite(record.get("hessian_max_eigenvalue")):
        parts.append(f"eig {record['hessian_max_eigenvalue']:.4g}")
    parts.append(f"{_number(record.get('seconds'), '.1f')}s")
    parts.append(f"eta {duration(eta)}")
    line = "  ".join(parts)
    if "genotype" not in record:
        return line
    arch = f"genotype {record['genotype']}"
    truth = record.get("ground_truth")
    if isinstance(truth, dict):
        tests = [f"{_SHORT.get(name, name)} {_number(value.get('test'), '.2f')}"
                 for name, value in truth.items() if isinstance(value, dict)]
        arch += f"  NB201 test {' '.join(tests)}"
    if len(line) + 2 + len(arch) <= LINE_WIDTH:
        return f"{line}  {arch}"
    return f"{line}\n    {arch}"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "?"

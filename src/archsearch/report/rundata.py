"""A run directory as read for its report: configuration, per-epoch records, result, plots, and its parts
(``train/``, P-DARTS' ``stage*/``), each a run of its own.

A run may be finished, still going or killed: a torn last line of metrics.jsonl is left out with a note,
anything damaged before it is a RunDirectoryError. ``text`` spells any value a file can hold (YAML gives
dates, bytes, huge integers, deep nesting) as plain text, for the page to escape.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from archsearch.checks import readable_path
from archsearch.errors import ArchSearchError, RunDirectoryError, shown
from archsearch.utils.io import read_regular_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: how deep nested values are spelled out before "..." (a hostile file may nest thousands deep)
DEPTH = 6


@dataclass
class Run:
    """What one run directory holds, as read."""

    path: Path
    config: dict | None = None
    records: list[dict] = field(default_factory=list)
    result: dict | None = None  # genotype.json of a search, result.json of a training run
    pngs: list[tuple[str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parts: list[tuple[str, Run]] = field(default_factory=list)  # train/, stage1/, ...

    @property
    def kind(self) -> str:
        config = self.config or {}
        if "method" in config:
            return "search"
        if "recipe" in config or (self.path / "result.json").is_file():
            return "train"
        return "run"

    @property
    def genotype(self):
        """The final genotype, else the last epoch's, else that of the last part (P-DARTS' running stage)."""
        for source in (self.result or {}, *reversed(self.records)):
            if source.get("genotype") is not None:
                return source["genotype"]
        if self.kind == "train" and (self.config or {}).get("genotype") is not None:
            return self.config["genotype"]
        stages = [part.genotype for name, part in self.parts if name.startswith("stage")]
        return next((g for g in reversed(stages) if g is not None), None)

    @property
    def space(self):
        return (self.config or {}).get("space", (self.result or {}).get("space"))


# ---- reading ---------------------------------------------------------------------------------------
def _damaged(run_dir: Path, what: str, reason: str) -> RunDirectoryError:
    return RunDirectoryError(f"cannot report '{run_dir}': {what} is damaged ({reason})")


def read_metrics(path: Path, run_dir: Path) -> tuple[list[dict], str | None]:
    """The per-epoch records of ``path`` and a note where its last line is torn (a run killed mid-write
    leaves one, which is skipped); a damaged line before the last is an error, for what follows it
    cannot be trusted."""
    try:
        lines = read_regular_bytes(path).splitlines()
    except FileNotFoundError:
        return [], None
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # ValueError: bad JSON, bad UTF-8, a number too long to read
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif number == len(lines):
            return records, (f"{path.name}: line {number} is damaged (a run killed while writing it leaves "
                             "one) and is left out")
        else:
            raise _damaged(run_dir, path.name, f"line {number} of {len(lines)} is not a JSON object")
    return records, None


def _read_config(path: Path, run_dir: Path) -> dict | None:
    try:
        data = yaml.safe_load(read_regular_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise _damaged(run_dir, "config.yaml", "not UTF-8 text") from None
    except yaml.YAMLError:
        raise _damaged(run_dir, "config.yaml", "not valid YAML") from None
    except RecursionError:
        raise _damaged(run_dir, "config.yaml", "nested too deeply") from None
    except (ValueError, TypeError):  # a value YAML spells but Python cannot hold (an integer of 5,000 digits)
        raise _damaged(run_dir, "config.yaml", "a value that cannot be read") from None
    if not isinstance(data, dict):
        raise _damaged(run_dir, "config.yaml", "not a mapping of settings")
    return data


def _read_result(run: Run) -> None:
    for name in ("genotype.json", "result.json"):
        try:
            data = json.loads(read_regular_bytes(run.path / name))
        except FileNotFoundError:
            continue
        except (ValueError, RecursionError, ArchSearchError):
            run.notes.append(f"{name} is damaged and is left out")
            continue
        if isinstance(data, dict):
            run.result = data
            return
        run.notes.append(f"{name} holds no JSON object and is left out")


def _read_pngs(run: Run) -> None:
    for path in sorted(run.path.glob("*.png")):
        try:
            data = read_regular_bytes(path)
        except (OSError, ArchSearchError) as err:
            run.notes.append(f"{path.name} cannot be read ({err}) and is left out")
            continue
        if data.startswith(PNG_SIGNATURE):
            run.pngs.append((path.name, data))
        else:
            run.notes.append(f"{path.name} is not a PNG image and is left out")


def _stage_number(path: Path) -> tuple[int, str]:
    digits = re.sub(r"\D", "", path.name)
    return (int(digits) if digits and len(digits) < 10 else -1, path.name)


def read_run(run_dir: str | os.PathLike, *, part: bool = False) -> Run:
    """Everything a page shows of the run in ``run_dir``; RunDirectoryError where it is no run."""
    path = readable_path(run_dir, "run directory", error=RunDirectoryError)
    if not path.is_dir():
        raise RunDirectoryError(f"cannot report '{path}': not a directory; give a run directory")
    run = Run(path)
    run.config = _read_config(path / "config.yaml", path)
    run.records, note = read_metrics(path / "metrics.jsonl", path)
    if note:
        run.notes.append(note)
    if run.config is None and not (path / "metrics.jsonl").exists():
        raise RunDirectoryError(f"cannot report '{path}': not a run directory (no config.yaml, no metrics.jsonl)")
    _read_result(run)
    _read_pngs(run)
    if not part:
        children = [path / "train"] if (path / "train").is_dir() else []
        children += sorted((p for p in path.glob("stage*") if p.is_dir()), key=_stage_number)
        for child in children:
            if (child / "config.yaml").exists() or (child / "metrics.jsonl").exists():
                run.parts.append((child.name, read_run(child, part=True)))
            else:
                run.notes.append(f"{child.name}/ holds no run yet")
    return run


# ---- text --------------------------------------------------------------------------------------------
def text(value, depth: int = 0) -> str:
    """Any value read from a run as plain text (escaped later): null and booleans as YAML spells them,
    numbers in full, containers in flow style, cut off deep inside."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() < 12_000 else shown(value)  # str() refuses over 4,300 digits
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple, set, frozenset, dict)) and depth >= DEPTH:
        return "..."
    if isinstance(value, dict):
        return "{" + ", ".join(f"{text(k, depth + 1)}: {text(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(text(v, depth + 1) for v in value) + "]"
    return str(value)  # a date or time from YAML


def flatten(mapping: dict, prefix: str = "", depth: int = 0) -> list[tuple[str, object]]:
    """(dotted key, value) of every leaf of nested mappings; an empty mapping is a leaf."""
    items = []
    for key, value in mapping.items():
        name = prefix + text(key, DEPTH - 1)
        if isinstance(value, dict) and value and depth < DEPTH:
            items += flatten(value, name + ".", depth + 1)
        else:
            items.append((name, value))
    return items

"""Run directories of differentiable searches as NAS-Bench-201's Table 5 (Dong & Yang, ICLR 2020).

Per method: the seeds tabulated, the search time (each run's epoch ``seconds`` from metrics.jsonl summed,
stages included, then mean ± std over the seeds) and the found cells' 200-epoch accuracies, mean ± std
over the seeds (sample std, ddof=1; one seed shows ± 0.00). "valid" is the benchmark's: on CIFAR-10 the
``cifar10-valid`` setting (trained on 25k training images, scored on the 25k held-out ones), on CIFAR-100
and ImageNet16-120 one half of the test set, "test" the other half (docs/benchmarks.md). The published
rows come from ``bench_summary``. A run on a space without ground truth (DARTS) shows its genotype and
search time, '-' for accuracies.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from archsearch.errors import ArchSearchError, RunDirectoryError, shown
from archsearch.groundtruth.nb201_datasets import DATASETS
from archsearch.studies.bench_summary import PUBLISHED_ONE_SHOT, PUBLISHED_OWN_PAPER, mean_std, pm
from archsearch.utils.io import read_yaml, write_json_atomic, write_text_atomic

#: the accuracy columns, in the paper's order
COLUMNS = tuple(f"{dataset}_{split}" for dataset in DATASETS for split in ("valid", "test"))
HEADERS = tuple(f"{dataset.replace('cifar', 'CIFAR-')} {split}" for dataset in DATASETS for split in ("valid", "test"))
SOURCES = {"one-shot": "NAS-Bench-201 paper, Table 5", "own paper": "the method's own paper"}


def read_json(path: Path):
    """What a JSON file holds, or None where it is missing or damaged."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def find_runs(paths) -> list[Path]:
    """Each path is a run directory (it holds config.yaml) or a folder of them (a compare's --out); one
    error names the first path that is neither."""
    runs: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            why = "not a directory" if path.exists() else "no such directory"
            raise RunDirectoryError(f"--runs {shown(str(path))}: {why}")
        if (path / "config.yaml").is_file():
            found = [path]
        else:
            try:
                found = sorted(c for c in path.iterdir() if c.is_dir() and (c / "config.yaml").is_file())
            except OSError as error:
                reason = error.strerror or error
                raise RunDirectoryError(f"--runs {shown(str(path))}: cannot list it ({reason})") from None
            if not found:
                raise RunDirectoryError(f"--runs {shown(str(path))} is not a run directory (no config.yaml) and "
                                        "holds none; give search run directories or a compare's --out")
        runs += [r for r in found if r.resolve() not in {known.resolve() for known in runs}]
    return runs


def search_seconds(directory: Path) -> float:
    """The sum of the epochs' ``seconds`` in the run's metrics.jsonl (and its stages', P-DARTS)."""
    total = 0.0
    for path in [directory / "metrics.jsonl", *sorted(directory.glob("stage*/metrics.jsonl"))]:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            try:
                seconds = json.loads(line).get("seconds")
            except (ValueError, AttributeError, RecursionError):
                continue  # a line cut by a kill: the resume drops it too
            if isinstance(seconds, (int, float)) and math.isfinite(seconds):
                total += seconds
    return total


def _config(directory: Path) -> dict | None:
    try:
        config = read_yaml(directory / "config.yaml")
    except Exception:  # noqa: BLE001 - any unreadable config.yaml is one damaged run, reported as such
        return None
    return config if isinstance(config, dict) and "method" in config else None


def _ground_truth(space_name: str, genotype: str) -> dict | None:
    """{column: accuracy} of a genotype where its space has a benchmark, else None."""
    from archsearch.spaces import get_space

    space = get_space(space_name)
    truth = space.ground_truth(space.parse(genotype))
    if truth is None:
        return None
    return {f"{dataset}_{split}": truth[dataset][split] for dataset in DATASETS for split in ("valid", "test")}


def read_run(directory: Path, error: str | None = None, method: str | None = None, seed: int | None = None) -> dict:
    """One run as a row: method, space, seed, genotype, search seconds, accuracies; ``status`` is done,
    failed (with ``error``), unfinished or 'no cell' (the selector rejected the cell it found)."""
    directory = Path(directory)
    config = _config(directory)
    row = {"dir": str(directory), "method": method or directory.name, "seed": seed, "space": None,
           "genotype": None, "search_seconds": None, "ground_truth": None, "status": "failed", "error": error}
    if config is not None:
        row.update(method=config.get("method"), seed=config.get("seed"), space=config.get("space"))
    if error is not None:
        return row
    if config is None:
        return {**row, "error": f"'{directory}': its config.yaml is missing, damaged or not a search run's"}
    summary = read_json(directory / "genotype.json")
    if not isinstance(summary, dict) or "out_dir" not in summary:
        return {**row, "status": "unfinished", "error": "no result yet: run the same compare again to resume it"}
    row["search_seconds"] = search_seconds(directory)
    row["genotype"] = summary.get("genotype")
    if not isinstance(row["genotype"], str):
        reason = summary.get("invalid_architecture") or "genotype.json holds no genotype"
        return {**row, "status": "no cell", "error": f"no valid cell: {shown(reason, 160)}"}
    try:
        row["ground_truth"] = _ground_truth(str(row["space"]), row["genotype"])
    except ArchSearchError as err:
        return {**row, "error": f"its genotype cannot be looked up: {err}"}
    return {**row, "status": "done"}


def _stats(values: list) -> list[float] | None:
    return list(mean_std(values)) if values else None


def tabulate(directories, errors: dict | None = None, plan: dict | None = None) -> dict:
    """The table of the runs in ``directories``: {"methods": {label: row}, "published": {...}, "runs":
    [...], "notes": [...], "complete"}. ``errors`` ({dir: message}) marks runs that failed while running,
    ``plan`` ({dir: (method, seed)}) names runs that never wrote a config.yaml."""
    errors, plan = errors or {}, plan or {}
    runs = [read_run(d, errors.get(str(d)), *plan.get(str(d), (None, None))) for d in directories]
    done = [r for r in runs if r["status"] == "done"]
    several_spaces = len({r["space"] for r in done}) > 1
    methods: dict[str, dict] = {}
    for run in done:
        label = f"{run['method']} ({run['space']})" if several_spaces else str(run["method"])
        methods.setdefault(label, {"method": run["method"], "space": run["space"], "runs": []})["runs"].append(run)
    for row in methods.values():
        mine = row.pop("runs")
        truths = [r["ground_truth"] for r in mine if r["ground_truth"] is not None]
        row.update(seeds=[r["seed"] for r in mine], search_seconds=_stats([r["search_seconds"] for r in mine]),
                   **{c: _stats([t[c] for t in truths]) for c in COLUMNS})
    published = {}
    if any(r["ground_truth"] for r in done):
        published = {name: {"source": SOURCES[kind], "search_seconds": seconds, **dict(zip(COLUMNS, map(list, cells)))}
                     for kind, rows in (("one-shot", PUBLISHED_ONE_SHOT), ("own paper", PUBLISHED_OWN_PAPER))
                     for name, (seconds, cells) in rows.items()}
    notes = [f"{r['method']} seed {'?' if r['seed'] is None else r['seed']} ({r['dir']}): {r['status']}: {r['error']}"
             for r in runs if r["error"]]
    return {"columns": list(COLUMNS), "methods": methods, "published": published, "runs": runs, "notes": notes,
            "complete": all(r["status"] in ("done", "no cell") for r in runs)}


def _cell(stats: list | None) -> str:
    return "-" if stats is None else pm(*stats)


def _code(text: str | None) -> str:
    """A genotype in a table cell: NB201's strings are made of '|', which would split the cell."""
    return "-" if text is None else "`" + text.replace("|", "\\|") + "`"


def markdown(table: dict) -> str:
    header = "| method | seeds | search (s) | " + " | ".join(HEADERS) + " |"
    lines = ["Search time: the sum of each run's epoch seconds (metrics.jsonl), mean ± std over seeds. "
             "Accuracies: NAS-Bench-201, 200 epochs, of the found cells, mean ± std over seeds (sample std; "
             "one seed shows ± 0.00). 'valid': CIFAR-10's held-out half of its training set (cifar10-valid), "
             "one half of the test set on CIFAR-100 and ImageNet16-120.", "", header,
             "| --- " * (3 + len(COLUMNS)) + "|"]
    for label, row in table["methods"].items():
        seeds = ",".join(map(str, row["seeds"]))
        lines.append(f"| {label} | {seeds} | {_cell(row['search_seconds'])} | "
                     + " | ".join(_cell(row[c]) for c in COLUMNS) + " |")
    for name, row in table["published"].items():
        seconds = "-" if row["search_seconds"] is None else f"{row['search_seconds']:.2f}"
        lines.append(f"| {name} (published) | - | {seconds} | " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |")
    if table["published"]:
        lines += ["", "Published rows: NAS-Bench-201 paper (Dong & Yang, ICLR 2020), Table 5; DrNAS: its own "
                      "paper (Chen et al., ICLR 2021). Sources of each number: archsearch/studies/bench_summary.py."]
    lines += ["", "| method | seed | status | search (s) | genotype | run |", "| --- | --- | --- | --- | --- | --- |"]
    for r in table["runs"]:
        seconds = "-" if r["search_seconds"] is None else f"{r['search_seconds']:.2f}"
        seed = "-" if r["seed"] is None else r["seed"]
        lines.append(f"| {r['method']} | {seed} | {r['status']} | {seconds} | {_code(r['genotype'])} | {r['dir']} |")
    if table["notes"]:
        lines += ["", "Notes:", *(f"- {note}" for note in table["notes"])]
    return "\n".join(lines) + "\n"


def csv_text(table: dict) -> str:
    """One row per method, ours then the published: mean and std of each column ('' where none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    stats = ["search_seconds", *COLUMNS]
    writer.writerow(["method", "kind", "seeds"] + [f"{c}_{m}" for c in stats for m in ("mean", "std")])
    for label, row in table["methods"].items():
        writer.writerow([label, "ours", " ".join(map(str, row["seeds"]))]
                        + [v for c in stats for v in (row[c] or ["", ""])])
    for name, row in table["published"].items():
        seconds = ["" if row["search_seconds"] is None else row["search_seconds"], ""]
        writer.writerow([name, row["source"], ""] + seconds + [v for c in COLUMNS for v in row[c]])
    return buffer.getvalue()


def save_compare(table: dict, out: Path) -> None:
    out = Path(out)
    write_text_atomic(out / "compare.md", markdown(table))
    write_text_atomic(out / "compare.csv", csv_text(table))
    write_json_atomic(out / "compare.json", table)

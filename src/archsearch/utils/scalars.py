"""A run's per-epoch scalars: metrics.jsonl's records flattened to one value per column, as ``metrics.csv``
(rewritten atomically from the whole history after each epoch, so that a resumed run's CSV is its
metrics.jsonl) and as TensorBoard's scalars.

Nested objects become columns named by their path (``a: {b: 1}`` -> ``a_b``), except the NAS-Bench-201
ground truth, whose columns are named by dataset and split (``cifar10_test``; its index: ``nb201_index``).
Lists (op weights, a distribution's parameters) are left out.
"""

from __future__ import annotations

import csv
import io
import math
import os

from archsearch.utils.io import write_text_atomic

METRICS_CSV = "metrics.csv"


def flat_scalars(record: dict) -> dict:
    """{column: value} of one record: numbers, booleans, text and None; nested objects flattened."""
    out: dict = {}
    for key, value in record.items():
        if key == "ground_truth" and isinstance(value, dict):
            _flatten(out, {("nb201_index" if k == "index" else k): v for k, v in value.items()}, "")
        else:
            _flatten(out, {key: value}, "")
    return out


def _flatten(out: dict, values: dict, prefix: str) -> None:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(out, value, f"{name}_")
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value


def numeric(value) -> bool:
    """A value TensorBoard can plot (booleans and missing values are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def csv_text(history: list[dict]) -> str:
    """The history as CSV: one row per record, the columns in the order they first appear; a column a
    record lacks is empty, as is None."""
    rows = [flat_scalars(r) for r in history]
    columns = list(dict.fromkeys(name for row in rows for name in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # CRLF rows, as RFC 4180 has them: a lone CR in a value is quoted then
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                         for c in columns])
    return buffer.getvalue()


def write_metrics_csv(path: str | os.PathLike, history: list[dict]) -> None:
    write_text_atomic(path, csv_text(history))

"""A run directory as one self-contained HTML page: the page a researcher sends a colleague.

``write_report(run_dir)`` reads a search run (config.yaml, metrics.jsonl, genotype.json, plots, the
trained cell's run in ``train/``, P-DARTS' ``stage*/``), a training run (result.json instead of
genotype.json) or a run still going or killed (metrics so far, no result yet), and writes one HTML file:
the result, the cell drawing, the configuration, the per-epoch table and every PNG, embedded as data URIs.
The page needs no network, no JavaScript and no other file. Every string read from the run is escaped:
a genotype or a configuration value is data, never markup.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
from pathlib import Path

from archsearch.checks import output_file
from archsearch.errors import ArchSearchError
from archsearch.report.rundata import Run, flatten, read_run, text
from archsearch.utils.io import write_text_atomic

#: what the plots a run writes show (any other PNG is captioned with its name alone)
CAPTIONS = {
    "cell.png": "the selected cell",
    "supernet.png": "the supernet",
    "op_weights.png": "relaxed op weights per edge over the epochs",
    "hessian_eigenvalue.png": "dominant Hessian eigenvalue of the validation loss in alpha",
    "skip_count.png": "skip connections in the selected cell",
    "ground_truth.png": "NAS-Bench-201 ground truth of the selected cell",
    "distribution.png": "the architecture distribution (mean, spread, entropy)",
}

#: per-epoch columns in this order first; others follow as they appear, ``seconds`` last
FIRST_COLUMNS = ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "genotype", "skip_count",
                 "hessian_max_eigenvalue")
LABELS = {"train_loss": "train loss", "train_acc": "train acc %", "valid_loss": "valid loss",
          "valid_acc": "valid acc %", "skip_count": "skips", "hessian_max_eigenvalue": "Hessian eigenvalue",
          "ground_truth.index": "NB201 #"}
SHORT_DATASETS = {"cifar10": "C10", "cifar100": "C100", "ImageNet16-120": "IN16"}


def _e(value) -> str:
    return html.escape(value if isinstance(value, str) else text(value), quote=True)


def _cell(value) -> str:
    """A table cell: floats to four figures with the exact value as the cell's title."""
    if isinstance(value, float):
        return f'<td class="num" title="{_e(value)}">{value:.4g}</td>'
    if value is None:
        return '<td class="none">&mdash;</td>'
    if isinstance(value, (int, bool)):
        return f'<td class="num">{_e(value)}</td>'
    return f"<td><code>{_e(value)}</code></td>"


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


# ---- the page ---------------------------------------------------------------------------------------
def _key_table(items, table_id: str) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(key)}</th>{_cell(value)}</tr>' for key, value in items)
    return f'<table id="{_e(table_id)}" class="keys"><tbody>{rows}</tbody></table>'


def _columns(records: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update((key, None) for key, value in flatten(record) if _scalar(value))
    first = [key for key in FIRST_COLUMNS if key in seen]
    truth = [key for key in seen if key.startswith("ground_truth.")]
    rest = [key for key in seen if key not in first and key not in truth and key != "seconds"]
    return first + truth + rest + (["seconds"] if "seconds" in seen else [])


def _label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    if key.startswith("ground_truth."):  # NB201's 200-epoch accuracies of the epoch's cell
        dataset, _, split = key.removeprefix("ground_truth.").partition(".")
        return f"{SHORT_DATASETS.get(dataset, dataset)} {split}".strip()
    return key.replace("_", " ")


def metrics_table(records: list[dict], table_id: str) -> str:
    """The per-epoch table: one row per record, one column per scalar leaf any record holds."""
    columns = _columns(records)
    head = "".join(f'<th scope="col" data-key="{_e(key)}" title="{_e(key)}">{_e(_label(key))}</th>'
                   for key in columns)
    rows = []
    for record in records:
        values = dict(flatten(record))
        rows.append("<tr>" + "".join(_cell(values.get(key)) for key in columns) + "</tr>")
    return (f'<div class="wide"><table id="{_e(table_id)}" class="metrics"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _ground_truth_table(truth: dict, table_id: str) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(dataset)}</th>{_cell(split.get("valid"))}{_cell(split.get("test"))}</tr>'
                   for dataset, split in truth.items() if isinstance(split, dict))
    index = f" (#{_e(truth['index'])})" if "index" in truth else ""
    return (f'<table id="{_e(table_id)}" class="keys"><caption>NAS-Bench-201 ground truth{index}, 200 epochs'
            f'</caption><thead><tr><th></th><th scope="col">valid %</th><th scope="col">test %</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _lookup_ground_truth(run: Run) -> dict | None:
    """The table's accuracies for a trained NB201 cell (a search records them itself)."""
    if run.space != "nb201" or not isinstance(run.genotype, str):
        return None
    from archsearch.groundtruth.nb201 import NB201Table

    try:
        results = NB201Table.load().query_all(run.genotype)
    except ArchSearchError:
        return None
    first = next(iter(results.values()))
    return {"index": first.index, **{name: {"valid": r.valid, "test": r.test} for name, r in results.items()}}


def _figure(name: str, data: bytes, caption: str) -> str:
    source = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="{source}" alt="{_e(name)}"><figcaption><code>{_e(name)}</code>'
            f"{': ' + _e(caption) if caption else ''}</figcaption></figure>")


def _drawn_cell(run: Run) -> tuple[str, str]:
    """The cell drawing, or a note why there is none: cell.png where the run wrote one, else drawn here."""
    cell = next((data for name, data in run.pngs if name == "cell.png"), None)
    if cell is not None:
        return _figure("cell.png", cell, CAPTIONS["cell.png"]), ""
    if not isinstance(run.space, str) or not isinstance(run.genotype, str):
        return "", "no cell to draw" if run.genotype is None else "the genotype is not text; no drawing"
    from archsearch.report.draw import cells_figure
    from archsearch.report.png import png_bytes
    from archsearch.spaces import get_space

    try:
        figure, _ = cells_figure(get_space(run.space), run.genotype)
    except ArchSearchError as err:
        return "", f"the cell is not drawn: {err}"
    return _figure("cell (drawn for this page)", png_bytes(figure, dpi=110, bbox_inches="tight"), ""), ""


def _planned_epochs(run: Run):
    config = run.config or {}
    recipe = config.get("recipe") if isinstance(config.get("recipe"), dict) else {}
    return config.get("epochs") if run.kind == "search" else recipe.get("epochs")


def _status(run: Run) -> str:
    planned = _planned_epochs(run)
    done = f"{len(run.records)} epoch{'s' if len(run.records) != 1 else ''} recorded"
    done += f" of {_e(planned)}" if isinstance(planned, int) else ""
    if not run.records and run.parts:
        done = "its epochs are recorded in the parts below"
    if run.result is not None:
        return f"finished; {done}"
    wanted = {"search": "genotype.json", "train": "result.json"}.get(run.kind, "a result")
    return f"no {wanted} yet: the run is in progress or was stopped; {done}; the result shown is the latest"


def _result(run: Run, prefix: str) -> str:
    parts = []
    genotype = run.genotype
    label = "genotype" if run.result is not None else "current genotype"
    if genotype is not None:
        parts.append(f'<p>{label} ({_e(run.space or "space unknown")}):</p><p class="genotype"><code>'
                     f"{_e(genotype)}</code></p>")
    result = run.result or {}
    truth = result.get("ground_truth")
    if not isinstance(truth, dict) and run.result is None and run.records:
        truth = run.records[-1].get("ground_truth")
    if not isinstance(truth, dict) and run.kind == "train" and not prefix:
        truth = _lookup_ground_truth(run)
    if isinstance(truth, dict):
        parts.append(_ground_truth_table(truth, f"{prefix}ground-truth"))
    trained = result.get("train")
    if isinstance(trained, dict) and isinstance(trained.get("test_accuracy"), float):
        epochs = trained.get("epochs")
        parts.append(f'<p class="trained">trained from scratch for {_e(epochs)} epoch{"" if epochs == 1 else "s"} '
                     f'on {_e(trained.get("dataset"))}: test accuracy <b>{trained["test_accuracy"]:.2f}%</b></p>')
    if isinstance(result.get("test_accuracy"), float):
        parts.append(f'<p class="trained">test accuracy <b>{result["test_accuracy"]:.2f}%</b></p>')
    rest = [(k, v) for k, v in flatten(result) if k != "genotype" and not k.startswith(("ground_truth.", "train."))]
    # a list of records (P-DARTS' stages) reads best as a table of its own
    is_records = [isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v) for _, v in rest]
    lists = [item for item, records in zip(rest, is_records) if records]
    rest = [item for item, records in zip(rest, is_records) if not records]
    if rest:
        parts.append(_key_table(rest, f"{prefix}result"))
    for key, records in lists:
        parts.append(f"<p>{_e(key)}:</p>{metrics_table(records, f'{prefix}result-{key}')}")
    return "".join(parts)


def _body(run: Run, prefix: str = "", level: int = 2) -> str:
    h = f"h{level}"
    out = [f'<p class="status">{_status(run)}</p>']
    out += [f'<p class="note">{_e(note)}</p>' for note in run.notes]
    out.append(f"<{h}>Result</{h}>{_result(run, prefix)}")
    if not prefix:
        drawing, why = _drawn_cell(run)
        out.append(drawing or f'<p class="note">{_e(why)}</p>')
    config = _key_table(flatten(run.config), f"{prefix}config") if run.config else "<p>no config.yaml</p>"
    out.append(f"<{h}>Configuration</{h}>{config}" if not prefix else
               f"<details><summary>Configuration</summary>{config}</details>")
    if run.records:
        out.append(f"<{h}>Per epoch</{h}>{metrics_table(run.records, f'{prefix}metrics')}")
    plots = [_figure(name, data, CAPTIONS.get(name, "")) for name, data in run.pngs if name != "cell.png" or prefix]
    if plots:
        out.append(f"<{h}>Plots</{h}>" + "".join(plots))
    return "".join(out)


def title(run: Run) -> str:
    config = run.config or {}
    if run.kind == "search":
        return f"{text(config.get('method'))} on {text(config.get('space'))}, {text(config.get('data'))}"
    if run.kind == "train":
        recipe = config.get("recipe")
        name = recipe.get("name") if isinstance(recipe, dict) else None
        return f"training on {text(config.get('space'))}, {text(config.get('dataset'))} ({text(name)} recipe)"
    return f"run {run.path.name}"


STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}section.part{margin-top:3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.2em .5em;
text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.none{color:#999;text-align:center}.wide{overflow-x:auto}code{word-break:break-all;font-size:.9em}
.genotype code{font-size:1em}table.metrics td code{display:block;min-width:24em}.note{color:#8a4b00}
.status{color:#555}figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}"""


def report_html(run: Run | str | os.PathLike) -> str:
    """The page of a run, or of the run in a directory (RunDirectoryError where it is not a readable run)."""
    run = run if isinstance(run, Run) else read_run(run)
    heading = title(run)
    parts = []
    for name, part in run.parts:
        label = "the found cell trained from scratch" if name == "train" else f"stage {name[5:]}"
        parts.append(f'<section class="part" id="{_e(name)}"><h2>{_e(label)} (<code>{_e(name)}/</code>)</h2>'
                     f"{_body(part, prefix=name + '-', level=3)}</section>")
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(heading)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(heading)}</h1>"
            f'<p class="status">run directory <code>{_e(str(run.path))}</code>, {run.kind}</p>'
            f"{_body(run)}{''.join(parts)}<hr><p class=\"status\">archsearch report, {made}</p></body></html>\n")


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the page of ``run_dir`` to ``out`` (default ``run_dir/report.html``) atomically; returns its path."""
    run = read_run(run_dir)  # a directory that is no run is refused before --out is touched
    target = output_file(run.path / "report.html" if out is None else out, "--out")
    write_text_atomic(target, report_html(run))
    return target

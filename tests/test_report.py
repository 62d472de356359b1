"""``archsearch report``: one self-contained HTML page of a run, checked against the run's own files.

A tiny real search (with its trained cell in ``train/``) is run once for the module; the page is parsed
with html.parser and compared with metrics.jsonl, config.yaml and genotype.json as read here, and opened
in headless Chromium (Debian's, driven by playwright) to see every image load without a console error.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.errors import RunDirectoryError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.report.html import report_html, write_report

from cli_contract import assert_one_line_error, returns_or_raises_ours, run_cli

TINY = {"data": "digits", "epochs": 2, "C": 4, "N": 1, "limit_train": 128, "batch_size": 32, "hessian_every": 0,
        "train_epochs": 1}
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<script>alert(1)</script>"


class Page(HTMLParser):
    """The tables (by id: header keys, rows of (text, attributes) cells) and the images of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.images: list[dict] = []
        self.table = self.cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = self.tables.setdefault(attrs.get("id"), {"keys": [], "rows": []})
        elif tag == "tr" and self.table is not None:
            self.table["rows"].append([])
        elif tag in ("td", "th") and self.table is not None:
            self.cell = {"tag": tag, "text": "", **attrs}
            self.table["rows"][-1].append(self.cell)
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data

    def key_table(self, table_id: str) -> dict[str, dict]:
        return {row[0]["text"]: row[1] for row in self.tables[table_id]["rows"] if row[1]["tag"] == "td"}

    def metrics(self, table_id: str) -> tuple[list[str], list[dict[str, dict]]]:
        header, *rows = self.tables[table_id]["rows"]
        keys = [cell["data-key"] for cell in header]
        return keys, [dict(zip(keys, row)) for row in rows]


def expected_columns(record: dict) -> dict:
    """What the per-epoch table should show of one metrics.jsonl line: every scalar, and NB201's ground truth."""
    out = {k: v for k, v in record.items() if v is None or isinstance(v, (bool, int, float, str))}
    truth = record.get("ground_truth") or {}
    out.update({f"ground_truth.{k}": v for k, v in truth.items() if not isinstance(v, dict)})
    out.update({f"ground_truth.{d}.{s}": v for d, split in truth.items() if isinstance(split, dict)
                for s, v in split.items()})
    return out


def assert_cell_shows(cell: dict, value) -> None:
    if isinstance(value, float):  # four figures shown, the exact value as the cell's title
        assert float(cell["title"]) == value or (math.isnan(value) and math.isnan(float(cell["title"])))
        assert float(cell["text"]) == pytest.approx(value, rel=1e-3)
    elif value is None:
        assert cell["text"] == "\u2014"
    elif isinstance(value, bool):
        assert cell["text"] == str(value).lower()
    else:
        assert cell["text"] == str(value)


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> Path:
    from archsearch.search.resolve import resolve_config
    from archsearch.search.runner import run_search

    out = tmp_path_factory.mktemp("report") / "run"
    run_search(resolve_config(overrides=TINY), out, quiet=True)
    return out


def copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("*.pt", ".archsearch.lock"))
    return target


def make_run(path: Path, config: str | bytes | None = "space: nb201\nmethod: darts\n",
             metrics: str | bytes | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in (("config.yaml", config), ("metrics.jsonl", metrics)):
        if content is not None:
            (path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ---- a real search run ------------------------------------------------------------------------------
@pytest.mark.slow
def test_page_holds_every_metrics_value_config_key_and_the_result(search_run):
    path = write_report(search_run)
    assert path == search_run / "report.html" and not list(search_run.glob(".*.tmp"))
    page = Page(path.read_text())
    records = [json.loads(line) for line in (search_run / "metrics.jsonl").read_text().splitlines()]
    keys, rows = page.metrics("metrics")
    assert len(rows) == len(records) == 2
    for record, row in zip(records, rows):
        expected = expected_columns(record)
        assert set(keys) == set(expected)  # no column made up, none left out
        for key, value in expected.items():
            assert_cell_shows(row[key], value)
    assert keys[:5] == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc"] and keys[-1] == "seconds"

    config = yaml.safe_load((search_run / "config.yaml").read_text())
    shown = page.key_table("config")
    assert set(shown) == set(config)
    for key, value in config.items():
        if isinstance(value, (list, dict)):
            continue
        assert_cell_shows(shown[key], value)
    assert shown["arch_betas"]["text"] == "[0.5, 0.999]" and shown["relaxation_options"]["text"] == "{}"

    summary = json.loads((search_run / "genotype.json").read_text())
    text = path.read_text()
    assert f'<p class="genotype"><code>{summary["genotype"]}</code></p>' in text
    assert f"test accuracy <b>{summary['train']['test_accuracy']:.2f}%</b>" in text
    truth = page.key_table("ground-truth")
    table = NB201Table.load().query_all(summary["genotype"])  # the benchmark itself, not the run's copy
    assert set(truth) == {"cifar10", "cifar100", "ImageNet16-120"}
    for dataset, row in truth.items():
        assert float(row["title"]) == pytest.approx(table[dataset].valid)
    # the trained cell's run is a part of the page, with its own per-epoch table
    train_records = [json.loads(line) for line in (search_run / "train" / "metrics.jsonl").read_text().splitlines()]
    _, train_rows = page.metrics("train-metrics")
    assert [float(r["train_loss"]["title"]) for r in train_rows] == [r["train_loss"] for r in train_records]


@pytest.mark.slow
def test_every_png_is_embedded_with_the_drawn_cell(search_run, tmp_path):
    run = copy_run(search_run, tmp_path / "run")
    shutil.copy(run / "skip_count.png", run / "zz_new_plot.png")  # a plot nobody here knows of
    (run / "cell.png").unlink()  # as a run from before the live plots: the page draws the cell itself
    page = Page(report_html(run))
    sources = [image["src"] for image in page.images]
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    embedded = [base64.b64decode(source.partition(",")[2]) for source in sources]
    pngs = sorted(run.glob("*.png")) + sorted((run / "train").glob("*.png"))
    assert len(pngs) >= 6
    for png in pngs:
        assert png.read_bytes() in embedded, png
    # no cell.png in the run: the cell is drawn for the page, one more image
    assert not (run / "cell.png").exists() and len(embedded) == len(pngs) + 1
    assert [image["alt"] for image in page.images][1:] == [p.name for p in pngs]
    # a cell.png the run wrote is used instead of a drawing
    shutil.copy(run / "skip_count.png", run / "cell.png")
    page = Page(report_html(run))
    assert len(page.images) == len(pngs) + 1 and page.images[0]["alt"] == "cell.png"


@pytest.mark.slow
def test_a_training_run_directory(search_run):
    train = search_run / "train"
    assert run_cli(["report", str(train), "--out", str(train / "page.html")])[0] == 0
    text = (train / "page.html").read_text()
    result = json.loads((train / "result.json").read_text())
    assert "<title>training on nb201, digits (nb201 recipe)</title>" in text
    assert f"test accuracy <b>{result['test_accuracy']:.2f}%</b>" in text
    page = Page(text)
    truth = page.key_table("ground-truth")  # looked up for the trained cell
    table = NB201Table.load().query_all(result["genotype"])
    assert {d: float(row["title"]) for d, row in truth.items()} == pytest.approx(
        {d: r.valid for d, r in table.items()})
    assert len(page.tables["metrics"]["rows"]) == 1 + len((train / "metrics.jsonl").read_text().splitlines())


@pytest.mark.slow
def test_a_killed_run_still_reports(search_run, tmp_path):
    run = copy_run(search_run, tmp_path / "killed")
    (run / "genotype.json").unlink()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed mid-write
    assert run_cli(["report", str(run)])[0] == 0
    text = (run / "report.html").read_text()
    page = Page(text)
    assert len(page.metrics("metrics")[1]) == 1
    assert "metrics.jsonl: line 2 is damaged" in text and "no genotype.json yet" in text
    first = json.loads(lines[0])
    assert f'current genotype (nb201):</p><p class="genotype"><code>{first["genotype"]}</code>' in text
    assert float(page.key_table("ground-truth")["cifar10"]["title"]) == first["ground_truth"]["cifar10"]["valid"]


@pytest.mark.slow
def test_hostile_strings_are_escaped(search_run, tmp_path):
    run = copy_run(search_run, tmp_path / "hostile")
    summary = json.loads((run / "genotype.json").read_text())
    (run / "genotype.json").write_text(json.dumps({**summary, "genotype": HOSTILE}))
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "method": '<img src=x onerror="alert(2)">',
                                                     HOSTILE: "a&b"}))
    with (run / "metrics.jsonl").open("a") as metrics:
        metrics.write(json.dumps({"epoch": 3, "genotype": HOSTILE, "<b>key</b>": "</table>"}) + "\n")
    (run / "cell.png").unlink()  # so that the page tries to draw the hostile genotype itself
    text = report_html(run)
    assert "<script" not in text and "<img src=x" not in text and "<b>key" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in text
    page = Page(text)
    assert page.key_table("config")[HOSTILE]["text"] == "a&b"
    assert page.metrics("metrics")[1][-1]["<b>key</b>"]["text"] == "</table>"
    assert "the cell is not drawn" in text  # the hostile genotype is no cell


# ---- in a browser ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install "
                    "chromium; make test installs it where it can)")
def test_pages_load_in_a_browser_without_errors(search_run, tmp_path):
    from playwright.sync_api import sync_playwright

    hostile = copy_run(search_run, tmp_path / "hostile")
    (hostile / "genotype.json").write_text(json.dumps({"genotype": HOSTILE, "space": "nb201"}))
    pages = [write_report(search_run, tmp_path / "run.html"), write_report(hostile)]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            for path in pages:
                page = browser.new_page()
                problems = []
                page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: problems.append(str(error)))
                page.on("dialog", lambda dialog: (problems.append(f"dialog {dialog.message}"), dialog.dismiss()))
                page.on("request", lambda request: problems.append(f"request {request.url}")
                        if not request.url.startswith(("file:", "data:")) else None)
                page.goto(path.resolve().as_uri())
                images = page.evaluate("Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth])")
                assert len(images) == len(Page(path.read_text()).images) >= 5  # five plots, and a cell drawn in one
                assert all(complete and width > 0 for _, complete, width in images), images
                assert problems == [], (path, problems)
                page.close()
        finally:
            browser.close()


# ---- refusals ------------------------------------------------------------------------------------
def test_what_is_no_run_is_refused_in_one_line(tmp_path):
    assert_one_line_error(["report", str(tmp_path / "missing")], "does not exist")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(["report", str(tmp_path / "file")], "not a directory")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(["report", str(tmp_path / "empty")], "not a run directory")
    make_run(tmp_path / "bad-config", config="[unclosed")
    assert_one_line_error(["report", str(tmp_path / "bad-config")], "config.yaml is damaged")
    make_run(tmp_path / "list-config", config="- a\n- b\n")
    assert_one_line_error(["report", str(tmp_path / "list-config")], "config.yaml is damaged")
    make_run(tmp_path / "middle", metrics='{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    assert_one_line_error(["report", str(tmp_path / "middle")], "metrics.jsonl is damaged", "line 2 of 3")
    run = make_run(tmp_path / "stage-middle")
    make_run(run / "stage1", metrics='[1]\n{"epoch": 2}\n')
    assert_one_line_error(["report", str(run)], "stage1", "line 1 of 2")
    assert not list(tmp_path.rglob("report.html"))


def test_an_out_that_cannot_be_written_is_refused(tmp_path):
    run = make_run(tmp_path / "run", metrics='{"epoch": 1, "train_loss": 2.5}\n')
    assert_one_line_error(["report", str(run), "--out", str(tmp_path)], "not a regular file")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(["report", str(run), "--out", str(tmp_path / "file" / "page.html")], "is a file")
    assert_one_line_error(["report", str(run), "--out", ""], "--out")
    assert run_cli(["report", str(run), "--out", str(tmp_path / "new" / "page.html")])[0] == 0
    assert (tmp_path / "new" / "page.html").read_text().startswith("<!DOCTYPE html>")


def test_a_metrics_only_run_and_a_torn_last_line(tmp_path):
    run = make_run(tmp_path / "run", config=None, metrics='{"epoch": 1, "valid_acc": 12.5}\n{"epoch": 2, "va')
    page = Page(report_html(run))
    keys, rows = page.metrics("metrics")
    assert keys == ["epoch", "valid_acc"] and len(rows) == 1 and rows[0]["valid_acc"]["title"] == "12.5"


def test_stages_are_parts_in_their_order(tmp_path):
    run = make_run(tmp_path / "pdarts", config="space: darts\nmethod: pdarts\ndata: digits\n")
    for stage in (10, 2, 1):
        make_run(run / f"stage{stage}", metrics=json.dumps({"epoch": 1, "train_loss": float(stage)}) + "\n")
    (run / "stage3").mkdir()  # started, nothing written yet
    stages = [{"stage": 1, "layers": 5, "genotype": "a"}, {"stage": 2, "layers": 8, "genotype": "b"}]
    (run / "genotype.json").write_text(json.dumps({"genotype": "b", "stages": stages}))
    text = report_html(run)
    _, rows = Page(text).metrics("result-stages")
    assert [{key: cell["text"] for key, cell in row.items()} for row in rows] == [
        {key: str(value) for key, value in stage.items()} for stage in stages]
    where = [text.index(f'id="stage{s}"') for s in (1, 2, 10)]
    assert where == sorted(where)
    assert "stage3/ holds no run yet" in text
    assert Page(text).metrics("stage10-metrics")[1][0]["train_loss"]["title"] == "10.0"


# ---- generated input ---------------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
RECORD = st.dictionaries(st.sampled_from(["epoch", "genotype", "train_loss", "ground_truth", "seconds"])
                         | st.text(max_size=8), JSON, max_size=6)
METRICS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.lists(RECORD | JSON, max_size=4).flatmap(
        lambda items: st.integers(0, 50).map(lambda cut: "".join(json.dumps(i) + "\n" for i in items)[:-cut or None])),
)
CONFIG = st.one_of(
    st.none(),
    st.fixed_dictionaries({"space": st.sampled_from(["nb201", "darts"]), "method": st.text(max_size=5)},
                          optional={"genotype": st.text(max_size=40)}).map(yaml.safe_dump),
    st.binary(max_size=200),
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(["space", "method", "data", "epochs", "genotype", "recipe"]) | st.text(max_size=8),
                    JSON, max_size=6).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=CONFIG, metrics=METRICS | st.none())
def test_generated_run_files_give_a_page_or_our_error(config, metrics):
    with tempfile.TemporaryDirectory() as folder:
        run = make_run(Path(folder) / "run", config=config, metrics=metrics)
        page = returns_or_raises_ours(report_html, run)
        if page is not None:
            assert "<script" not in page.lower() and page.endswith("</html>\n")
            Page(page)
        else:
            with pytest.raises(RunDirectoryError):
                report_html(run)

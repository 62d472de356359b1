"""Watching a run live: the per-epoch lines, ``--json``, ``--quiet``, metrics.csv, plots of a killed run,
TensorBoard's logs (resume included) and the Hessian's progress. The oracles are the run's own
metrics.jsonl (what the console and the CSV must repeat), values recomputed here from it (the ETA, the
NAS-Bench-201 table's accuracies), and TensorBoard's reader."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.diagnostics.hessian import largest_eigenvalue
from archsearch.errors import ArchSearchError, ConfigError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.search.hooks import EpochHook
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.utils.io import read_jsonl
from archsearch.utils.progress import MODES, Console, duration, epoch_line, eta_seconds
from archsearch.utils.scalars import csv_text
from archsearch.utils.tensorboard import resolve_tensorboard

from cli_contract import assert_one_line_error, run_cli

TINY = ["data=digits", "epochs=2", "C=4", "N=1", "limit_train=128", "batch_size=32", "hessian_every=0"]
TINY_KEYS = dict(item.split("=") for item in TINY)
PLOTS = ("op_weights.png", "hessian_eigenvalue.png", "skip_count.png", "ground_truth.png")


def _search(out: Path, *flags: str, **keys) -> tuple[str, str]:
    keys = {**TINY_KEYS, "train_epochs": 0, **keys}
    code, stdout, stderr = run_cli(["search", "--space", "nb201", "--method", "darts",
                                    *(f"{k}={v}" for k, v in keys.items()), "--out", str(out), *flags])
    assert code == 0, stderr
    return stdout, stderr


def _eta(records: list[dict], total: int) -> float:
    """The ETA after the last of ``records``, recomputed: mean epoch time times the epochs left."""
    return sum(r["seconds"] for r in records) / len(records) * (total - records[-1]["epoch"])


def test_one_line_per_epoch_with_the_genotype_its_ground_truth_and_an_eta(tmp_path):
    stdout, stderr = _search(tmp_path / "run", "--no-tensorboard", hessian_every=1, hessian_iters=2, train_epochs=1)
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("search epoch ")]
    assert len(starts) == len(records) == 2
    table = NB201Table.load()
    for i, record in zip(starts, records):
        text = lines[i] + " " + (lines[i + 1] if lines[i + 1].startswith("    ") else "")
        assert lines[i].startswith(f"search epoch {record['epoch']}/2  train {record['train_loss']:.4f} "
                                   f"{record['train_acc']:.2f}%  valid {record['valid_loss']:.4f}")
        assert re.search(r"genotype (\S+)", text).group(1) == record["genotype"]
        truth = table.query_all(record["genotype"])
        assert (f"NB201 test C10 {truth['cifar10'].test:.2f} C100 {truth['cifar100'].test:.2f} "
                f"IN16 {truth['ImageNet16-120'].test:.2f}") in text
        assert f"skips {record['skip_count']}" in text and f"eig {record['hessian_max_eigenvalue']:.4g}" in text
        assert f"eta {duration(round(_eta(records[:record['epoch']], 2), 1))}" in text  # tenths of a second
    # the training of the found cell: one line per epoch too, with its lr
    trained = read_jsonl(tmp_path / "run" / "train" / "metrics.jsonl")
    train_lines = [line for line in lines if line.startswith("train epoch ")]
    assert len(train_lines) == len(trained) == 1
    assert f"lr {trained[0]['lr']:.5f}" in train_lines[0] and "eta 0s" in train_lines[0]
    assert "hessian eigenvalue" in stderr and "search epoch 1/2" in stderr  # the bars, on stderr


def test_json_mode_prints_the_records_and_the_result_and_nothing_else(tmp_path):
    stdout, stderr = _search(tmp_path / "run", "--json", "--no-tensorboard", train_epochs=1)
    objects = [json.loads(line) for line in stdout.splitlines()]  # every line is one JSON object
    assert [o["kind"] for o in objects] == ["search_epoch", "search_epoch", "train_epoch", "result"]
    search = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    train = read_jsonl(tmp_path / "run" / "train" / "metrics.jsonl")
    for obj, record, total in zip(objects, search + train, (2, 2, 1)):
        eta = obj.pop("eta_seconds")
        assert obj.pop("kind").endswith("_epoch")
        assert json.dumps(obj, sort_keys=True) == json.dumps(record, sort_keys=True)
        history = search if "genotype" in record else train
        assert eta == pytest.approx(_eta(history[:record["epoch"]], total), abs=0.051)
    summary = json.loads((tmp_path / "run" / "genotype.json").read_text())
    result = objects[-1]
    assert result["genotype"] == summary["genotype"] and result["train"] == summary["train"]
    assert "it/s" not in stderr and "epoch" not in stderr  # no bars


def test_quiet_prints_only_the_final_summary(tmp_path):
    stdout, stderr = _search(tmp_path / "run", "--quiet", "--no-tensorboard")
    summary = json.loads((tmp_path / "run" / "genotype.json").read_text())
    assert [line.split()[0] for line in stdout.splitlines()] == ["method", "genotype", "NB201", "run"]
    assert f"genotype   {summary['genotype']}" in stdout
    assert stderr == ""


def test_train_json_lines_match_its_metrics(tmp_path):
    out = tmp_path / "train"
    code, stdout, stderr = run_cli(["train", "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|"
                                    "nor_conv_3x3~1|nor_conv_3x3~2|", "--epochs", "2", "--C", "4", "--N", "1",
                                    "--limit-train", "96", "--limit-test", "64", "--out", str(out), "--json",
                                    "--no-tensorboard"])
    assert code == 0, stderr
    objects = [json.loads(line) for line in stdout.splitlines()]
    assert [o["kind"] for o in objects] == ["train_epoch", "train_epoch", "result"]
    records = read_jsonl(out / "metrics.jsonl")
    for obj, record in zip(objects, records):
        shown = {k: v for k, v in obj.items() if k not in ("kind", "eta_seconds")}
        assert json.dumps(shown, sort_keys=True) == json.dumps(record, sort_keys=True)  # NaN where no valid split
    assert objects[-1]["test_accuracy"] == json.loads((out / "result.json").read_text())["test_accuracy"]
    assert _csv(out / "metrics.csv") == [{k: _cell(v) for k, v in r.items()} for r in records]


# ---- metrics.csv ----------------------------------------------------------------------------------
def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def test_metrics_csv_holds_the_scalars_of_metrics_jsonl_with_the_ground_truth_flattened(tmp_path):
    config = resolve_config("darts", overrides={**TINY_KEYS, "space": "nb201", "train_epochs": 0})
    run_search(config, tmp_path / "run", quiet=True, tensorboard=False)
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    rows = _csv(tmp_path / "run" / "metrics.csv")
    assert len(rows) == len(records) == 2
    for row, record in zip(rows, records):
        expected = {k: _cell(v) for k, v in record.items() if k not in ("op_weights", "ground_truth")}
        truth = record["ground_truth"]
        expected["nb201_index"] = str(truth["index"])
        for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
            for split in ("valid", "test"):
                expected[f"{dataset}_{split}"] = _cell(truth[dataset][split])
        assert row == expected
        assert float(row["train_loss"]) == record["train_loss"]  # repr: the exact float


# ---- plots of a run killed mid-way ----------------------------------------------------------------
class _KillInSecondEpoch(EpochHook):
    """Sees what the run directory holds as epoch 2 starts, then kills the run."""

    def __init__(self, out: Path):
        self.out, self.seen = out, None

    def on_epoch_start(self, view) -> None:
        if view.epoch == 1:
            self.seen = {name: (self.out / name).is_file() for name in (*PLOTS, "metrics.csv")}
            raise KeyboardInterrupt


def test_plots_are_written_after_each_epoch_so_a_killed_run_has_them(tmp_path):
    out = tmp_path / "run"
    config = resolve_config("darts", overrides={**TINY_KEYS, "space": "nb201"})
    hook = _KillInSecondEpoch(out)
    search = DifferentiableSearch(config, out, quiet=True, hooks=[hook], tensorboard=False)
    with pytest.raises(KeyboardInterrupt):
        search.run()
    assert hook.seen == {name: True for name in (*PLOTS, "metrics.csv")}
    assert len(read_jsonl(out / "metrics.jsonl")) == 1 and not (out / "genotype.json").exists()


# ---- TensorBoard ----------------------------------------------------------------------------------
def _events(folder: Path):
    pytest.importorskip("tensorboard", reason="TensorBoard logging needs the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_a_run_directory_whose_name_is_not_utf8_is_one_error_for_tensorboard(tmp_path):
    """TensorBoard's event writer encodes its path as UTF-8: a directory named with other bytes (which Python
    holds as surrogates) is one error, before the first epoch, not a traceback at the first write."""
    from archsearch.utils.tensorboard import TensorBoardLog

    with pytest.raises(ConfigError, match="not valid UTF-8.*--no-tensorboard"):
        TensorBoardLog(tmp_path / "run\udcff\udcfe")
    pytest.importorskip("tensorboard", reason="the command line's default logs to TensorBoard where installed")
    assert_one_line_error(["search", *TINY, "--out", str(tmp_path / "cli\udcff"), "--quiet"], "not valid UTF-8")


def test_tensorboard_logs_every_epoch_and_a_resume_from_an_older_checkpoint_logs_no_epoch_twice(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard logging needs the tensorboard extra")
    out = tmp_path / "run"
    config = resolve_config("darts", overrides={**TINY_KEYS, "space": "nb201", "train_epochs": 0})
    run_search(config, out, quiet=True, tensorboard=True)
    events = _events(out / "tensorboard")
    tags = events.Tags()
    expected = {f"search/{k}" for k in ("train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "skip_count",
                                        "seconds")}
    expected |= {f"ground_truth/{d}_{s}" for d in ("cifar10", "cifar100", "ImageNet16-120") for s in ("valid", "test")}
    assert expected <= set(tags["scalars"])
    records = read_jsonl(out / "metrics.jsonl")
    assert [(e.step, e.value) for e in events.Scalars("search/train_loss")] == [
        (r["epoch"], pytest.approx(r["train_loss"], rel=1e-6)) for r in records]
    assert tags["histograms"] == ["op_weights/cell"] and tags["images"] == ["genotype/cells"]
    assert [e.step for e in events.Images("genotype/cells")] == [1, 2]

    # the newest checkpoint damaged: the resume goes back to epoch 1 and runs epoch 2 again
    (out / "checkpoint.pt").write_bytes(b"damaged")
    run_search(resume=out, quiet=True, tensorboard=True)
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 2
    events = _events(out / "tensorboard")
    records = read_jsonl(out / "metrics.jsonl")
    for tag in ("search/train_loss", "ground_truth/cifar10_test", "search/seconds"):
        assert [e.step for e in events.Scalars(tag)] == [1, 2], tag
    assert events.Scalars("search/seconds")[-1].value == pytest.approx(records[-1]["seconds"])
    assert _csv(out / "metrics.csv")[-1]["seconds"] == repr(records[-1]["seconds"])  # the CSV follows the resume


def test_tensorboard_asked_for_but_not_installed_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("archsearch.utils.tensorboard.tensorboard_installed", lambda: False)
    assert_one_line_error(["search", "--space", "nb201", *TINY, "--out", str(tmp_path / "run"), "--tensorboard"],
                          "tensorboard", "not installed")
    assert not (tmp_path / "run").exists()
    assert resolve_tensorboard(None) is False and resolve_tensorboard(False) is False


def test_quiet_and_json_together_are_refused():
    assert_one_line_error(["search", "--quiet", "--json"], "--json")


# ---- the parts ------------------------------------------------------------------------------------
def test_hessian_progress_reports_each_lanczos_step():
    """H = diag(3, 1, -0.5) of a quadratic: the largest eigenvalue is 3."""
    x = torch.zeros(3, requires_grad=True)
    h = torch.tensor([3.0, 1.0, -0.5])
    calls = []
    value = largest_eigenvalue(lambda: 0.5 * (h * x * x).sum(), [x], iters=50,
                               generator=torch.Generator().manual_seed(0),
                               progress=lambda k, n: calls.append((k, n)))
    assert value == pytest.approx(3.0, rel=1e-3)
    assert calls == [(k, 50) for k in range(1, len(calls) + 1)] and 1 < len(calls) <= 3  # a 3-dimensional Krylov space


def test_eta_and_durations():
    history = [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 20.0}]
    assert eta_seconds(history, 10) == 120.0 and eta_seconds([], 10) is None
    assert [duration(s) for s in (0, 59.4, 60, 245, 3720, None, math.nan)] == [
        "0s", "59s", "1m00s", "4m05s", "1h02m", "?", "?"]


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                     st.text(min_size=1, max_size=20))
_nested = st.dictionaries(st.text(min_size=1, max_size=6), _scalars, max_size=3)
_records = st.dictionaries(st.text(min_size=1, max_size=12),
                           st.one_of(_scalars, st.lists(st.floats(), max_size=3), _nested), max_size=8)


@settings(max_examples=150, deadline=None)
@given(mode=st.one_of(st.text(max_size=8), st.integers(), st.none(), st.sampled_from(MODES)),
       wanted=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)))
def test_console_modes_and_tensorboard_switches_are_checked(mode, wanted):
    try:
        assert Console(mode).mode == mode and mode in MODES
    except ConfigError:
        assert mode not in MODES or not isinstance(mode, str)
    try:
        assert resolve_tensorboard(wanted) in (True, False) and (wanted is None or isinstance(wanted, bool))
    except ArchSearchError:
        assert wanted is not None and not isinstance(wanted, bool) or wanted is True


@settings(max_examples=150, deadline=None)
@given(record=_records, total=st.integers(0, 10**6), eta=st.one_of(st.none(), st.floats()))
def test_an_epoch_line_words_any_record(record, total, eta):
    for kind in ("search", "train"):
        line = epoch_line(kind, record, total, eta)
        assert line.startswith(f"{kind} epoch ") and line.count("\n") <= 1


@settings(max_examples=150, deadline=None)
@given(history=st.lists(st.dictionaries(st.text(min_size=1, max_size=8), _scalars, max_size=6), max_size=5))
def test_metrics_csv_rows_repeat_each_record(history):
    rows = list(csv.reader(io.StringIO(csv_text(history))))
    header = list(dict.fromkeys(k for r in history for k in r))
    assert rows[0] == header if header else rows[0] == []
    assert len(rows) == len(history) + 1
    for row, record in zip(rows[1:], history):
        assert row == [_cell(record[c]) if c in record else "" for c in header]
        for column, cell in zip(header, row):
            if isinstance(record.get(column), float) and not math.isnan(record[column]):
                assert float(cell) == record[column]

"""``archsearch bench``: outputs against the table, the papers' table format, and identical results
whatever runs the jobs (inline, local processes, a local Ray instance)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re

import numpy as np
import pytest

from archsearch.groundtruth.nb201 import NB201Table
from archsearch.cli.studies import add_bench_arguments, cmd_bench
from archsearch.errors import ConfigError, UnknownNameError
from archsearch.studies.bench import run_bench

TABLE = NB201Table.load()
SMALL = dict(strategies="random,evolution", seeds=3, queries=25, quiet=True)


def _runs(out):
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def test_bench_writes_summary_table_runs_and_curves(tmp_path):
    summary = run_bench(out=tmp_path, **SMALL)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    runs = _runs(tmp_path)
    assert len(runs) == 6 and {r["strategy"] for r in runs} == {"random", "evolution"}
    for name, stats in summary.items():
        assert set(stats) == {"test_mean", "test_std", "valid_mean", "valid_std", "queries_mean"}
        mine = [r for r in runs if r["strategy"] == name]
        # test/valid of each run are the table's 200-epoch figures of its best-by-objective genotype
        test = [TABLE.accuracy(r["best_arch"], "cifar10", "test", 200) for r in mine]
        valid = [TABLE.accuracy(r["best_arch"], "cifar10", "valid", 200) for r in mine]
        assert [r["best_objective"] for r in mine] == [TABLE.accuracy(r["best_arch"], "cifar10", "valid", 12)
                                                       for r in mine]
        assert stats["test_mean"] == pytest.approx(np.mean(test))
        assert stats["test_std"] == pytest.approx(np.std(test, ddof=1))
        assert stats["valid_mean"] == pytest.approx(np.mean(valid))
        assert stats["queries_mean"] == 25
    table = (tmp_path / "table.md").read_text()
    assert re.search(r"\| random \| \d+\.\d\d ± \d\.\d\d \| \d+\.\d\d ± \d\.\d\d \| 25\.0 \|", table)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = json.loads((tmp_path / "curves.json").read_text())
    assert curves["grid"] == list(range(1, 26))
    mean = np.array(curves["strategies"]["random"]["mean"])
    last = [r["test"] for r in runs if r["strategy"] == "random"]
    assert mean[-1] == pytest.approx(np.mean(last))


def test_bench_seconds_budget_uses_the_papers_protocol_and_anchors(tmp_path):
    run_bench("random", seeds=2, seconds=12000, out=tmp_path, quiet=True)
    table = (tmp_path / "table.md").read_text()
    assert "12000 simulated seconds" in table and "93.70 ± 0.36" in table  # NB201 paper, Table 5
    for r in _runs(tmp_path):
        assert r["elapsed"] <= 12000 and r["best_so_far"][-1][0] <= 12000


def test_bench_results_do_not_depend_on_workers(tmp_path):
    run_bench(out=tmp_path / "one", workers=1, **SMALL)
    run_bench(out=tmp_path / "two", workers=2, **SMALL)
    assert _runs(tmp_path / "one") == _runs(tmp_path / "two")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the optional 'ray' extra is not installed")
def test_bench_on_a_local_ray_instance_matches_workers(tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_bench(out=tmp_path / "ray", ray_address="local", **SMALL)
    finally:
        ray.shutdown()
    run_bench(out=tmp_path / "threads", workers=2, executor="thread", **SMALL)
    assert _runs(tmp_path / "ray") == _runs(tmp_path / "threads")


def test_bench_command_line(tmp_path, capsys):
    parser = add_bench_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--strategies", "random,local", "--queries", "10", "--seeds", "2", "--out",
                              str(tmp_path), "--option", "random.unique=true"])
    assert cmd_bench(args) == 0
    assert "| local |" in capsys.readouterr().out
    runs = _runs(tmp_path)
    for r in (r for r in runs if r["strategy"] == "random"):
        assert r["queries"] == 10
    with pytest.raises(SystemExit):  # exactly one budget
        parser.parse_args(["--strategies", "random", "--queries", "5", "--seconds", "5", "--out", "x"])
    with pytest.raises(ConfigError):
        cmd_bench(parser.parse_args(["--strategies", "random", "--queries", "5", "--out", str(tmp_path),
                                     "--option", "unique"]))
    with pytest.raises(UnknownNameError):
        run_bench("randon", queries=5, quiet=True)
    with pytest.raises(ConfigError):
        run_bench("random", quiet=True)

"""``archsearch compare``: the table against mean and std recomputed from each run's genotype.json and the
NAS-Bench-201 table, tabulating and re-running without searching again, resuming, one failed run kept
apart from the others, and one-line errors for bad arguments."""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ConfigError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.studies.compare import check_seeds
from cli_contract import PREFIX, assert_one_line_error, run_cli

TINY = ["--data", "digits", "epochs=1", "C=4", "N=1", "limit_train=128", "batch_size=32", "hessian_every=0",
        "train_epochs=0"]
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _compare(out, methods="darts,gdas", seeds="0,1", *extra):
    return run_cli(["compare", "--methods", methods, "--seeds", seeds, "--out", str(out), *TINY, *extra])


def _no_search(monkeypatch):
    """Any search from here on fails the test's expectations loudly."""
    import archsearch.search.runner as runner

    def refuse(*args, **kwargs):
        raise AssertionError("a search ran")

    monkeypatch.setattr(runner, "run_search", refuse)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "study"
    code, stdout, stderr = _compare(out)
    assert code == 0 and stderr == "", stderr
    return out, stdout


def _expected(out, method, seeds):
    """Mean and sample std of each column, from genotype.json and the table, by other means than the study."""
    table = NB201Table.load()
    genotypes = [json.loads((out / f"{method}-seed{s}" / "genotype.json").read_text())["genotype"] for s in seeds]
    columns = {}
    for dataset in DATASETS:
        for split in ("valid", "test"):
            values = [table.accuracy(g, dataset, split) for g in genotypes]
            columns[f"{dataset}_{split}"] = (statistics.mean(values), statistics.stdev(values))
    seconds = [sum(json.loads(line)["seconds"] for line in (out / f"{method}-seed{s}" / "metrics.jsonl").open())
               for s in seeds]
    columns["search_seconds"] = (statistics.mean(seconds), statistics.stdev(seconds))
    return columns


@pytest.mark.slow
def test_the_table_is_the_mean_and_std_of_the_found_cells(study):
    out, stdout = study
    table = json.loads((out / "compare.json").read_text())
    assert list(table["methods"]) == ["darts", "gdas"] and table["complete"] and table["notes"] == []
    markdown = (out / "compare.md").read_text()
    assert markdown in stdout  # printed and written alike
    csv_rows = (out / "compare.csv").read_text().splitlines()
    for method in ("darts", "gdas"):
        row = table["methods"][method]
        assert row["seeds"] == [0, 1]
        expected = _expected(out, method, [0, 1])
        for column, (mean, std) in expected.items():
            assert row[column] == pytest.approx([mean, std], abs=1e-9), (method, column)
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {method} | 0,1 |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        columns = ["search_seconds", *(f"{d}_{s}" for d in DATASETS for s in ("valid", "test"))]
        assert cells[2:] == [f"{expected[c][0]:.2f} ± {expected[c][1]:.2f}" for c in columns]
        assert any(r.startswith(f"{method},ours,0 1,") for r in csv_rows)
    # the published rows beside ours: DARTS' collapse to the all-skip cell (index 1835, the table's own row)
    darts_v1 = table["published"]["DARTS-V1"]
    skip = NB201Table.load()
    assert [darts_v1[f"{d}_{s}"][0] for d in DATASETS for s in ("valid", "test")] == \
        [round(skip.accuracy(1835, d, s), 2) for d in DATASETS for s in ("valid", "test")]
    assert "| GDAS (published) | - | 28925.91 | 89.89 ± 0.08 | 93.61 ± 0.09 |" in markdown


def test_tabulating_the_runs_again_runs_nothing_and_gives_the_same_table(study, tmp_path, monkeypatch):
    out, _ = study
    _no_search(monkeypatch)
    first = json.loads((out / "compare.json").read_text())
    for argv in (["--runs", str(out)], ["--runs", *(str(out / f"{m}-seed{s}") for m in ("darts", "gdas")
                                                  for s in (0, 1))]):
        code, stdout, stderr = run_cli(["compare", *argv, "--out", str(tmp_path)])
        again = json.loads((tmp_path / "compare.json").read_text())
        assert code == 0 and stderr == ""
        assert again["methods"] == first["methods"] and again["published"] == first["published"]
        assert (tmp_path / "compare.md").read_text() == (out / "compare.md").read_text()


def test_running_the_same_compare_again_skips_finished_runs(study, monkeypatch):
    out, _ = study
    _no_search(monkeypatch)
    before = json.loads((out / "compare.json").read_text())
    code, stdout, stderr = _compare(out)
    assert code == 0 and stderr == ""
    assert stdout.count(": skipped") == 4
    assert json.loads((out / "compare.json").read_text())["methods"] == before["methods"]


def test_a_finished_run_with_other_settings_is_not_taken_as_this_ones(study, monkeypatch):
    out, _ = study
    _no_search(monkeypatch)
    code, stdout, stderr = run_cli(["compare", "--methods", "gdas", "--seeds", "0", "--out", str(out),
                                    *TINY[:-1], "train_epochs=1"])
    assert code == 2 and len(stderr.splitlines()) == 1 and "1 of 1 runs failed" in stderr
    assert "other settings (train_epochs: 0 there, 1 asked)" in stdout
    assert _compare(out)[0] == 0  # the study's own table back, for the tests after this one


def test_an_unfinished_run_is_resumed(study, tmp_path):
    out, _ = study
    shutil.copytree(out / "gdas-seed0", tmp_path / "gdas-seed0")
    (tmp_path / "gdas-seed0" / "genotype.json").unlink()  # as if killed after its last checkpoint
    code, stdout, _ = run_cli(["compare", "--runs", str(tmp_path)])
    assert code == 2 and "unfinished" in stdout
    code, stdout, stderr = _compare(tmp_path, "gdas", "0")
    assert code == 0 and "gdas seed 0: resumed" in stdout
    assert json.loads((tmp_path / "gdas-seed0" / "genotype.json").read_text())["genotype"] == \
        json.loads((out / "gdas-seed0" / "genotype.json").read_text())["genotype"]
    # a started run of another seed where seed 1's should be is not continued as seed 1's
    shutil.copytree(out / "gdas-seed0", tmp_path / "gdas-seed1")
    (tmp_path / "gdas-seed1" / "genotype.json").unlink()
    code, stdout, _ = _compare(tmp_path, "gdas", "1")
    assert code == 2 and "holds a run with other settings (seed: 0 there, 1 asked)" in stdout


def test_a_failing_run_is_reported_and_the_others_kept(tmp_path, monkeypatch):
    import archsearch.search.runner as runner

    real = runner.run_search

    def darts_breaks(config=None, out_dir=None, **kwargs):
        if config is not None and config.method == "darts":
            raise RuntimeError("CUDA error: device-side assert triggered\n(more lines)")
        return real(config, out_dir, **kwargs)

    monkeypatch.setattr(runner, "run_search", darts_breaks)
    (tmp_path / "gdas-seed1").write_text("in the way")  # no directory can be made there
    code, stdout, stderr = _compare(tmp_path)
    assert code == 2 and stderr.splitlines() == [f"{PREFIX} 3 of 4 runs failed or have no result (see the notes above)"]
    table = json.loads((tmp_path / "compare.json").read_text())
    assert list(table["methods"]) == ["gdas"] and table["methods"]["gdas"]["seeds"] == [0]
    assert table["methods"]["gdas"]["cifar10_test"][1] == 0.0  # one seed: std 0, shown as ± 0.00
    notes = "\n".join(table["notes"])
    assert "darts seed 0" in notes and "RuntimeError: CUDA error: device-side assert triggered; (more lines)" in notes
    assert "gdas seed 1" in notes and "gdas seed 0" not in notes
    assert "Notes:" in (tmp_path / "compare.md").read_text()


@pytest.mark.slow
def test_darts_space_runs_show_genotype_and_time_without_ground_truth(tmp_path):
    code, stdout, stderr = run_cli(["compare", "--methods", "darts", "--seeds", "0", "--out", str(tmp_path),
                                    "--space", "darts", "--data", "digits", "epochs=1", "C=4", "layers=2",
                                    "limit_train=64", "batch_size=32", "hessian_every=0", "train_epochs=0"])
    assert code == 0, stderr
    table = json.loads((tmp_path / "compare.json").read_text())
    row = table["methods"]["darts"]
    assert all(row[f"{d}_{s}"] is None for d in DATASETS for s in ("valid", "test"))
    assert row["search_seconds"][0] > 0 and table["published"] == {}
    assert table["runs"][0]["genotype"].startswith("Genotype(normal=")
    assert "| darts | 0 |" in stdout and " - | - | - | - | - | - |" in stdout


@pytest.mark.slow
def test_local_processes_find_what_inline_runs_find(study, tmp_path):
    out, _ = study
    code, stdout, stderr = _compare(tmp_path, "gdas", "0,1", "--jobs", "2")
    assert code == 0, stderr
    for seed in (0, 1):
        mine = json.loads((tmp_path / f"gdas-seed{seed}" / "genotype.json").read_text())
        assert mine["genotype"] == json.loads((out / f"gdas-seed{seed}" / "genotype.json").read_text())["genotype"]
    table = json.loads((tmp_path / "compare.json").read_text())
    expected = _expected(tmp_path, "gdas", [0, 1])
    assert table["methods"]["gdas"]["cifar10_test"] == pytest.approx(list(expected["cifar10_test"]), abs=1e-9)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the optional 'ray' extra is not installed")
def test_a_local_ray_instance_finds_what_inline_runs_find(study, tmp_path):
    import ray

    out, _ = study
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code, _, stderr = _compare(tmp_path, "gdas", "0", "--ray", "local")
    finally:
        ray.shutdown()
    assert code == 0, stderr
    assert json.loads((tmp_path / "gdas-seed0" / "genotype.json").read_text())["genotype"] == \
        json.loads((out / "gdas-seed0" / "genotype.json").read_text())["genotype"]


@pytest.mark.parametrize("argv, fragment", [
    (["--methods", "nosuch", "--seeds", "0"], "unknown method 'nosuch'"),
    (["--methods", "darts,darts", "--seeds", "0"], "names 'darts' twice"),
    (["--methods", "", "--seeds", "0"], "needs at least one name"),
    (["--methods", "darts", "--seeds", ""], "at least one seed"),
    (["--methods", "darts", "--seeds", "0,-1"], "got -1"),
    (["--methods", "darts", "--seeds", "1,2,1"], "seed 1 twice"),
    (["--methods", "darts", "--seeds", "zero"], "comma-separated integers"),
    (["--methods", "darts", "--seeds", "0", "epocs=2"], "did you mean 'epochs'"),
    (["--methods", "darts", "--seeds", "0", "epochs=-2"], "epochs"),
    (["--methods", "darts", "--seeds", "0", "seed=3"], "set per run"),
    (["--methods", "darts", "--seeds", "0", "--jobs", "0"], "--jobs"),
    (["--methods", "darts", "--seeds", "0", "--epochs", "2", "epochs=3"], "given twice"),
])
def test_bad_arguments_are_one_line_and_start_nothing(tmp_path, monkeypatch, argv, fragment):
    _no_search(monkeypatch)
    assert_one_line_error(["compare", *argv, "--out", str(tmp_path / "study")], fragment)
    assert not (tmp_path / "study").exists()


def test_bad_runs_are_one_line(tmp_path, monkeypatch):
    _no_search(monkeypatch)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    assert_one_line_error(["compare", "--runs", str(tmp_path / "empty")], "is not a run directory")
    assert_one_line_error(["compare", "--runs", str(tmp_path / "missing")], "no such directory")
    assert_one_line_error(["compare", "--runs", str(tmp_path / "file")], "not a directory")
    assert_one_line_error(["compare", "--runs", str(tmp_path / "empty"), "--methods", "darts"], "--runs tabulates")
    assert_one_line_error(["compare", "--methods", "darts", "--seeds", "0"], "needs --out")
    assert_one_line_error(["compare", "--runs"], "expected at least one argument")


def _seeds_oracle(text: str):
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        return None
    if not values or len(set(values)) != len(values) or any(not 0 <= v < 2 ** 32 for v in values):
        return None
    return values


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=20), st.lists(st.integers(-3, 2 ** 33), max_size=5).map(
    lambda xs: ",".join(map(str, xs))), st.lists(st.sampled_from(["0", "1", " 2", "", "-1", "x", "3.5"]), max_size=5)
    .map(",".join)))
def test_seed_lists_parse_exactly_or_fail_with_our_error(text):
    expected = _seeds_oracle(text)
    try:
        got = check_seeds(text)
    except ConfigError:
        got = None
    assert got == expected


@settings(max_examples=40, deadline=None)
@given(methods=st.one_of(st.text(max_size=12), st.sampled_from(["darts", "gdas,darts", "darts,,gdas", "x,darts"])),
       seeds=st.text(alphabet="0123,- x", max_size=8))
def test_the_command_line_keeps_its_contract_on_any_methods_and_seeds(tmp_path_factory, methods, seeds):
    import archsearch.search.runner as runner

    out = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_search", lambda *a, **k: (_ for _ in ()).throw(ConfigError("no searching here")))
        code, _, stderr = run_cli(["compare", "--methods", methods, "--seeds", seeds, "--out", str(out), *TINY])
    lines = stderr.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(PREFIX), (methods, seeds, stderr)

"""The command line behaves the same everywhere: key=value and flags on search and train, ``config``,
close-key hints, defaults in --help, ``--version``, no torch where none is needed, NB201 indices and names."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import json
import math
import subprocess
import sys
from importlib import metadata, resources

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.cli import build_parser, main
from archsearch.evaluate.recipes import Recipe
from archsearch.search.config import SearchConfig
from archsearch.search.methods import METHODS
from cli_contract import PREFIX, assert_one_line_error

TINY = ["--epochs", "1", "--C", "4", "--N", "1", "--limit-train", "64", "batch_size=32", "limit_test=32", "--quiet"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def field_default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def plain(value):
    """Tuples as the lists JSON and YAML write."""
    return list(value) if isinstance(value, tuple) else value


def read_word(word: str):
    """A value of config's text output: JSON where it parses, else the bare string it is."""
    try:
        return json.loads(word)
    except json.JSONDecodeError:
        return word


# -- config -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS.names())
def test_config_prints_every_key_with_the_preset_value_default_and_meaning(capsys, method):
    code, out, _ = run(capsys, "config", method)
    assert code == 0
    rows = [line.split(maxsplit=3) for line in out.splitlines()[2:]]  # after the comment and the header
    preset = METHODS.get(method).settings
    assert [row[0] for row in rows] == [f.name for f in dataclasses.fields(SearchConfig)]
    for (key, value, default, meaning), f in zip(rows, dataclasses.fields(SearchConfig)):
        expected = method if key == "method" else preset.get(key, field_default(f))
        assert read_word(value) == plain(expected), key
        assert read_word(default) == plain(field_default(f)), key
        assert meaning == f.metadata["meaning"]


def test_config_json_takes_overrides_flags_and_a_file(capsys, tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("w_lr: 0.1\nepochs: 7\n")
    code, out, _ = run(capsys, "config", "darts2", "--config", str(path), "--seed", "3", "--json", "epochs=4",
                       "early_stop_options={dartsplus: {patience: 2}}")
    assert code == 0
    record = json.loads(out)
    assert list(record) == SearchConfig.keys()
    assert record["method"]["value"] == "darts2" and record["order"]["value"] == METHODS.get("darts2").settings["order"]
    assert record["w_lr"]["value"] == 0.1 and record["w_lr"]["default"] == 0.025  # the file
    assert record["epochs"]["value"] == 4 and record["epochs"]["default"] == 50  # key=value beats the file
    assert record["seed"]["value"] == 3  # a flag after --json, key=value after it
    assert record["early_stop_options"]["value"] == {"dartsplus": {"patience": 2}}
    assert record["arch_betas"]["value"] == [0.5, 0.999]


def test_every_configuration_key_has_a_one_line_meaning():
    for f in dataclasses.fields(SearchConfig):
        meaning = f.metadata.get("meaning", "")
        assert meaning.strip() and "\n" not in meaning, f.name


# -- the same override forms on search and train --------------------------------------------------------
@pytest.fixture
def captured_search(monkeypatch):
    """run_search replaced by one that keeps the resolved configuration it was handed."""
    import archsearch.search.runner as runner

    seen = {}

    def fake_run_search(config=None, out_dir=None, **kwargs):
        seen["config"] = config
        return {"method": config.method, "space": config.space, "genotype": "-", "out_dir": str(out_dir)}

    monkeypatch.setattr(runner, "run_search", fake_run_search)
    return seen


def test_search_takes_key_value_after_options_and_the_common_flags(capsys, captured_search, tmp_path):
    code, _, err = run(capsys, "search", "w_lr=0.05", "--epochs", "2", "hessian_every=0", "--C", "4", "--N", "1",
                       "--limit-train", "128", "--device", "cpu", "--seed", "5", "--deterministic",
                       "--out", str(tmp_path / "run"), "batch_size=32", "--quiet", "arch_lr=0.001")
    assert code == 0, err
    config = captured_search["config"]
    assert (config.w_lr, config.epochs, config.hessian_every, config.C, config.N) == (0.05, 2, 0, 4, 1)
    assert (config.limit_train, config.device, config.seed, config.deterministic) == (128, "cpu", 5, True)
    assert (config.batch_size, config.arch_lr) == (32, 0.001)
    code, _, err = run(capsys, "search", "--space", "darts", "--layers", "5", "--C", "4", "--out",
                       str(tmp_path / "darts"), "hessian_every=0")
    assert code == 0, err
    assert (captured_search["config"].layers, captured_search["config"].space) == (5, "darts")


@pytest.mark.parametrize("argv, key", [
    (["search", "--epochs", "2", "epochs=3"], "epochs"),
    (["search", "C=4", "--C", "4"], "C"),
    (["search", "--deterministic", "deterministic=true"], "deterministic"),
    (["search", "--limit-train", "8", "limit_train=8"], "limit_train"),
    (["train", "0", "--seed", "1", "seed=1"], "seed"),
    (["train", "0", "--limit-train", "8", "limit_train=8"], "limit_train"),
    (["train", "0", "--epochs", "1", "epochs=1"], "epochs"),
    (["train", "0", "--data", "digits", "dataset=digits"], "dataset"),
    (["train", "0", "--C", "4", "network={C: 4}"], "network C"),
    (["config", "--seed", "1", "seed=2"], "seed"),
    (["config", "darts", "method=darts2"], "method"),
])
def test_a_flag_and_its_key_value_together_are_one_error(argv, key):
    assert_one_line_error(argv, key, "twice")


@pytest.mark.parametrize("argv, close", [
    (["search", "hessian=1"], ("'hessian_every'", "'hessian_iters'")),
    (["config", "darts", "--json", "arch_lrr=1"], ("'arch_lr'",)),
    (["train", "0", "--epochs", "1", "lr_mn=0"], ("'lr_min'",)),
    (["train", "0", "limit_trian=3"], ("'limit_train'",)),
])
def test_unknown_keys_name_the_closest_valid_ones(argv, close):
    assert_one_line_error(argv, "did you mean", *close)


def test_train_flags_and_key_values_land_in_the_run_config_and_resume_needs_nothing_else(capsys, tmp_path):
    from archsearch.evaluate import train
    from archsearch.spaces import get_space

    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--seed", "2", "0", *TINY, "lr=0.05", "--out", str(out))
    assert code == 0, err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["recipe"]["network"] == {"C": 4, "N": 1}
    assert (saved["recipe"]["epochs"], saved["recipe"]["batch_size"], saved["recipe"]["lr"]) == (1, 32, 0.05)
    assert (saved["limit_train"], saved["limit_test"], saved["seed"]) == (64, 32, 2)

    # a run stopped after its first epoch: --resume DIR alone finishes it with its own settings
    space = get_space("nb201")
    stopped = tmp_path / "stopped"
    train(space.from_string("0"), space, "digits", Recipe(name="nb201").replace(
        epochs=2, batch_size=32, network={"C": 4, "N": 1}), out_dir=stopped, quiet=True, limit_train=64,
        limit_test=32, stop_after=1)
    assert len((stopped / "metrics.jsonl").read_text().splitlines()) == 1
    code, out_text, err = run(capsys, "train", "--resume", str(stopped))
    assert code == 0, err
    result = json.loads((stopped / "result.json").read_text())
    assert len((stopped / "metrics.jsonl").read_text().splitlines()) == 2
    assert f"test accuracy {result['test_accuracy']:.2f}%" in out_text


# -- generated input ----------------------------------------------------------------------------------
KEYS = st.one_of(st.sampled_from(SearchConfig.keys()), st.sampled_from([f.name for f in dataclasses.fields(Recipe)]),
                 st.sampled_from(["seed", "dataset", "limit_train", "space", "device", "network", "name"]),
                 st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
VALUES = st.one_of(st.sampled_from(["1", "0", "-1", "0.5", "1e-3", "null", "~", "true", "[1, 2]", "{C: 4}", "{a: 1}",
                                    "nb201", "darts", "", " ", "nan", "inf", "1e400", "[", "{", "'x", "2020-01-01",
                                    "{x: 2020-01-01}"]),
                   st.text(max_size=12))


def assert_ok_or_one_line(code: int, err: str, argv) -> None:
    if code != 0:
        lines = err.splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(PREFIX), (argv, code, err)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(KEYS, VALUES), max_size=3), as_json=st.booleans())
def test_config_under_random_keys_and_values(capsys, items, as_json):
    argv = ["config", *(f"{k}={v}" for k, v in items), *(["--json"] if as_json else [])]
    code, out, err = run(capsys, *argv)
    assert_ok_or_one_line(code, err, argv)
    if code == 0 and as_json:
        assert list(json.loads(out)) == SearchConfig.keys()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(KEYS, VALUES), max_size=3))
def test_train_overrides_under_random_keys_and_values(capsys, monkeypatch, tmp_path, items):
    import archsearch.evaluate as evaluate

    handed = []

    def fake_train(genotype, space, dataset, recipe, **kwargs):  # everything up to the training itself ran
        handed.append(recipe)
        return {"test_accuracy": 0.0, "params": 0, "flops": 0}

    monkeypatch.setattr(evaluate, "train", fake_train)
    argv = ["train", "0", "--out", str(tmp_path / "run"), *(f"{k}={v}" for k, v in items)]
    code, _, err = run(capsys, *argv)
    assert_ok_or_one_line(code, err, argv)
    assert (code == 0) == bool(handed) and all(isinstance(recipe, Recipe) for recipe in handed)


# -- help, version, torch -----------------------------------------------------------------------------
def _commands(parser):
    """(name, parser) of every command and subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from _commands(sub)


def test_every_help_shows_the_defaults_of_its_options():
    for name, sub in _commands(build_parser()):
        sub.format_help()  # adds the arguments of a parser built on first use
        formatter = sub._get_formatter()
        for action in sub._actions:
            default = action.default
            # nothing to show: no default, an off switch, an empty list (an option given any number of times)
            if not action.option_strings or default is None or default is False or default in ([], argparse.SUPPRESS):
                continue
            text = formatter._expand_help(action)  # the option's line of --help, as printed
            shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            assert "default" in text and shown in text, (name, action.dest, default, text)


def test_version_is_the_installed_distributions(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"archsearch {metadata.version('archsearch')}"


# spaces, info, show, train, search and the studies import torch when they run: a space is the class that builds
# its networks (cli/groundtruth.py says so at cmd_spaces); these answer from data alone
NO_TORCH = [["--help"], ["--version"], ["methods"], ["nb201", "query", "0"], ["nb201", "query", "6111", "--json"],
            ["config", "darts"], ["config", "gdas", "--json", "epochs=3"], ["search", "--help"], ["train", "--help"],
            ["config", "--help"], ["config", "nosuchkey=1"]]


@pytest.mark.parametrize("argv", NO_TORCH)
def test_data_only_commands_do_not_import_torch(argv):
    script = f"import sys; from archsearch.cli import main; main({argv!r}); assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- NAS-Bench-201 indices and names --------------------------------------------------------------------
def test_info_takes_an_index_as_nb201_query_does(capsys):
    from archsearch.groundtruth.nb201 import NB201Table

    arch = NB201Table.load().arch_strs[0]
    _, by_index, _ = run(capsys, "info", "0", "--json")
    _, by_string, _ = run(capsys, "info", arch, "--json")
    assert json.loads(by_index) == json.loads(by_string) and json.loads(by_index)["genotype"] == arch


def _table_rows() -> dict[int, dict]:
    """The shipped table read straight from its CSV, not through NB201Table."""
    source = resources.files("archsearch.groundtruth") / "data" / "nb201.csv.gz"
    with resources.as_file(source) as path, gzip.open(path, "rt", newline="") as handle:
        return {int(row["index"]): row for row in csv.DictReader(handle)}


def test_cifar10_valid_is_the_tables_valid_split_and_has_no_test_accuracy(capsys):
    rows = _table_rows()
    for index in (6111, 1835, 0):
        code, out, _ = run(capsys, "nb201", "query", str(index), "--dataset", "cifar10-valid", "--json")
        record = json.loads(out)
        row = rows[index]
        assert code == 0 and record["dataset"] == "cifar10-valid"
        assert record["valid"] == float(row["c10_valid_200"]) and record["valid_12"] == float(row["c10_valid_12"])
        assert record["train_time_200_s"] == float(row["train_time_c10valid_200_s"])
        assert record["params_M"] == float(row["params_c10_M"])
        assert math.isnan(record["test"]) and math.isnan(record["test_12"])
    # published facts: the best CIFAR-10 validation accuracy and DARTS' all-skip collapse (NB201 paper)
    _, out, _ = run(capsys, "nb201", "query", "6111", "--dataset", "cifar10-valid", "--json")
    assert json.loads(out)["valid"] == pytest.approx(91.6067)
    _, out, _ = run(capsys, "nb201", "query", "1835", "--dataset", "cifar10-valid", "--json")
    assert round(json.loads(out)["valid"], 2) == 39.77


def test_cifar10_valid_refuses_what_the_table_does_not_hold(tmp_path):
    from archsearch.errors import DataError
    from archsearch.groundtruth.nb201 import NB201Table

    table = NB201Table.load()
    assert table.accuracy(6111, "cifar10-valid", "valid", 12) == table.accuracy(6111, "cifar10", "valid", 12)
    with pytest.raises(DataError, match="no test-set accuracy"):
        table.accuracy(6111, "cifar10-valid", "test")
    assert_one_line_error(["bench", "--strategies", "random", "--queries", "5", "--dataset", "cifar10-valid",
                           "--out", str(tmp_path / "bench")], "cifar10-valid")

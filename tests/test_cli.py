"""The command line contract: outputs users and scripts rely on, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archsearch.cli import main
from archsearch.groundtruth.nb201 import NB201Table

from cli_contract import assert_one_line_error, run_cli

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "archsearch.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("spaces", "methods", "nb201", "info", "show", "train", "search", "bench", "proxies"):
        assert command in result.stdout


def test_spaces_and_methods_come_from_the_registries(capsys):
    from archsearch.search import METHODS
    from archsearch.spaces import SPACES

    _, out, _ = run(capsys, "spaces")
    assert [line.split()[0] for line in out.splitlines()] == SPACES.names()
    _, out, _ = run(capsys, "methods")
    assert set(METHODS.names()) <= {line.split()[0] for line in out.splitlines() if not line.startswith(" ")}


def test_nb201_query_json(capsys):
    code, out, _ = run(capsys, "nb201", "query", BEST, "--json")
    record = json.loads(out)
    assert code == 0 and record["index"] == 6111 and record["arch"] == BEST
    assert record["test"] == pytest.approx(94.3733) and record["valid"] == pytest.approx(91.6067)
    _, out, _ = run(capsys, "nb201", "query", "1835", "--dataset", "ImageNet16-120", "--json")
    record = json.loads(out)
    assert round(record["valid"], 2) == 16.43 and round(record["test"], 2) == 16.32
    assert record["params_M"] == pytest.approx(NB201Table.load().query(1835, "ImageNet16-120").params_M)


def test_info_json(capsys):
    _, out, _ = run(capsys, "info", BEST, "--space", "nb201", "--json")
    record = json.loads(out)
    assert record["params"] == pytest.approx(1.073466e6, rel=5e-3)
    assert record["flops"] == pytest.approx(155.584192e6, rel=2e-4)
    _, out, _ = run(capsys, "info", "DARTS_V2", "--space", "darts", "--json")
    assert json.loads(out)["params"] == 3_349_342  # the DARTS paper's 3.3M, auxiliary head excluded


def test_show_draws_a_png(capsys, tmp_path):
    code, _, _ = run(capsys, "show", "DARTS_V2", "--space", "darts", "--out", str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, fragment", [
    (["nb201", "query", "|nor_conv_3x3~0|+|nor_conv_3x3~0|"], "expected 3 nodes"),
    (["nb201", "query", "|conv9~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown NAS-Bench-201 op 'conv9'"),
    (["nb201", "query", "|none~0|+|none~0|none~1|none~2|+|none~0|none~1|none~2|"], "node 2 needs 2 incoming edges"),
    (["nb201", "query", "0", "--dataset", "cifar1000"], "unknown NAS-Bench-201 dataset"),
    (["info", "Genotype(normal=[('sep_conv_3x3', 0)]", "--space", "darts"], "Genotype"),
    (["info", BEST, "--space", "nasbench999"], "unknown search space 'nasbench999'"),
    (["search", "--method", "dartz"], "did you mean 'darts'"),
    (["search", "--data", "imagenet21k"], "unknown dataset 'imagenet21k'"),
    (["search", "epoch=3"], "did you mean 'epochs'"),
    (["train", BEST, "--data", "cifar10", "--data-dir", "/no/such/place"], "/no/such/place"),
    (["search", "--resume", "/no/such/run"], "cannot resume '/no/such/run': no such directory"),
])
def test_bad_input_is_one_line_and_exit_2(argv, fragment, tmp_path):
    result = subprocess.run([sys.executable, "-m", "archsearch.cli", *argv, *(
        ["--out", str(tmp_path / "out")] if argv[0] in ("search", "train") and "--resume" not in argv else [])],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert fragment in lines[0]


def test_argument_errors_are_exit_2_too():
    result = subprocess.run([sys.executable, "-m", "archsearch.cli", "nb201", "query"], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("failure", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 2359296 bytes. Error code 12 (Cannot allocate memory)"),
    RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.15 GiB total capacity)\nmore")])
def test_running_out_of_memory_is_one_line(monkeypatch, failure):
    from archsearch.cli import groundtruth

    def exhausted(args):
        raise failure

    monkeypatch.setattr(groundtruth, "cmd_spaces", exhausted)
    line = assert_one_line_error(["spaces"], "out of memory", "ask for less")
    assert "enforce fail" not in line


def test_another_runtime_error_is_not_taken_for_memory(monkeypatch):
    from archsearch.cli import groundtruth

    def broken(args):
        raise RuntimeError("a shape mismatch")

    monkeypatch.setattr(groundtruth, "cmd_spaces", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_cli(["spaces"])

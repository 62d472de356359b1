"""Bad arguments to the study commands (bench, proxies, zero-cost, optbench) and bad devices: one line on
stderr and exit code 2 from the command line, the package's own errors from the API; valid edge values run."""

from __future__ import annotations

import itertools

import pytest
import torch
from cli_contract import assert_ok_or_one_line_error, assert_one_line_error, returns_or_raises_ours, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.errors import ConfigError, DeviceError
from archsearch.runtime import resolve_device
from archsearch.studies.bench import run_bench
from archsearch.studies.optbench import optbench

HYPOTHESIS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_fresh = itertools.count()

#: integers a user might type: hostile ones, and small valid ones that keep a run to a fraction of a second
INTEGER = st.one_of(st.integers(-10**30, 0), st.integers(10**6, 10**30), st.integers(1, 2),
                    st.sampled_from(["1.5", "x", "", "nan", "٣", "1e3", "0x10", "--", "-0"]))
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["x", "", "1e999"]),
                   st.integers(-5, 5).map(str))
DEVICES = ["cpu", "cuda", "cuda:7", "mps", "foo", "", "cuda:-1", "cpu:0", "meta", "cuda:x", "xla", "CPU"]

BASE = {
    "bench": ["--strategies", "random", "--queries", "3", "--seeds", "1", "--quiet"],
    "proxies": ["--proxies", "params", "--archs", "2", "--quiet"],
    "zero-cost": ["--proxy", "params", "--samples", "2", "--seeds", "1", "--quiet"],
    "optbench": ["--optimizers", "uniform", "--dim", "2", "--steps", "3", "--runs", "1", "--quiet"],
}
FLAGS = {
    "bench": {"--queries": INTEGER, "--seconds": NUMBER, "--seeds": INTEGER, "--workers": INTEGER,
              "--batch": INTEGER, "--strategies": st.sampled_from(["random", "evolution,random", "foo", "", ",",
                                                                   "random,random", "rändom", "random\n"]),
              "--dataset": st.sampled_from(["cifar100", "c10", "foo", ""]),
              "--option": st.sampled_from(["random.unique=true", "random.unique=3", "random.foo=1", "random.seed=1",
                                           "evolution.population=2", "random.unique=[", "x", ".=", "random.=1"]),
              "--space": st.sampled_from(["nb201", "darts", "foo"])},
    "proxies": {"--archs": INTEGER, "--batch-size": INTEGER, "--seed": INTEGER,
                "--proxies": st.sampled_from(["params,flops", "synflow", "", ",", "params,params", "foo"]),
                "--data": st.sampled_from(["digits", "foo", "cifar10"]), "--device": st.sampled_from(DEVICES),
                "--space": st.sampled_from(["nb201", "darts", "foo"])},
    "zero-cost": {"--seeds": INTEGER, "--init-seed": INTEGER, "--device": st.sampled_from(DEVICES),
                  "--samples": st.sampled_from(["1,2", "0", "", "a", "-1,2", "99999", "2,2", "1.5"]),
                  "--proxy": st.sampled_from(["params", "synflow", "foo", ""]),
                  "--data": st.sampled_from(["digits", "foo"])},
    "optbench": {"--dim": INTEGER, "--steps": INTEGER, "--runs": INTEGER, "--seed": INTEGER,
                 "--lrs": st.sampled_from(["0.1", "cos:0.1", "nan", "inf", "-1", "0", "", "cos:", "x", "1e999"]),
                 "--optimizers": st.sampled_from(["uniform", "adam", "cmaes", "", "foo", "uniform,uniform"]),
                 "--function": st.sampled_from(["rastrigin", "foo"])},
}


@st.composite
def study_argv(draw):
    command = draw(st.sampled_from(sorted(BASE)))
    argv = [command, *BASE[command]]
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS[command])), min_size=1, max_size=2, unique=True)):
        argv.append(f"{flag}={draw(FLAGS[command][flag])}")
    return argv


@settings(HYPOTHESIS, max_examples=50)
@given(argv=study_argv())
def test_a_study_runs_or_refuses_in_one_line(tmp_path, argv):
    assert_ok_or_one_line_error([*argv, "--out", str(tmp_path / f"out{next(_fresh)}")])


@pytest.mark.parametrize("argv, fragment", [
    (["bench", "--strategies", "random", "--seconds", "inf"], "finite"),  # ran forever
    (["bench", "--strategies", "random", "--queries", str(10**20)], "budgets go up to"),
    (["bench", "--strategies", "random", "--queries", "5", "--seeds", str(10**20)], "seeds must be"),
    (["bench", "--strategies", "random", "--queries", "5", "--option", "random.foo=1"], "unexpected keyword"),
    (["bench", "--strategies", "random", "--queries", "5", "--option", "random.unique=3"], "takes a bool"),
    (["bench", "--strategies", "random", "--queries", "5", "--option", "random.seed=1"], "drop the option"),
    (["bench", "--strategies", "evolution", "--queries", "5", "--option", f"evolution.tournament={2**63}"],
     "takes a int"),
    # the population sizes a deque, which refuses a length past 64 bits itself: checked before it is built
    (["bench", "--strategies", "evolution", "--queries", "5", "--option", f"evolution.population={10**30}"],
     "takes a int"),
    (["bench", "--strategies", "random", "--queries", "5", "--option", "bo.xi=1"], "not among the strategies"),
    (["bench", "--strategies", "random", "--queries", "5", "--option", "random.unique=" + "[" * 5000],
     "not valid YAML"),
    (["bench", "--strategies", "random,random", "--queries", "5"], "twice"),
    (["proxies", "--proxies", "", "--archs", "2"], "at least one name"),
    (["proxies", "--proxies", "params", "--archs", "20000"], "--archs"),
    (["proxies", "--proxies", "params", "--archs", "2", "--seed", "-1"], "--seed"),
    (["proxies", "--proxies", "params", "--archs", "2", "--batch-size", "0"], "--batch-size"),
    (["proxies", "--proxies", "params", "--archs", "2", "--device", "foo"], "unknown device"),
    (["zero-cost", "--proxy", "params", "--samples", "99999", "--seeds", "1"], "sample size"),  # hung
    (["zero-cost", "--proxy", "params", "--samples", "2", "--seeds", str(10**15)], "--seeds"),
    (["zero-cost", "--proxy", "params", "--samples", "2", "--seeds", "1", "--init-seed", "-1"], "--init-seed"),
    (["optbench", "--lrs", "nan"], "finite"), (["optbench", "--lrs", "inf"], "finite"),
    (["optbench", "--optimizers", ""], "at least one name"),
    (["optbench", "--optimizers", "uniform", "--seed", "-1"], "--seed"),
    (["optbench", "--optimizers", "uniform", "--dim", str(10**11)], "--dim"),
    (["optbench", "--optimizers", "cmaes", "--dim", "1"], "--dim 2 or more"),
    (["optbench", "--optimizers", "uniform", "--dim", "50000", "--steps", "10000000"], "GiB"),
])
def test_study_regressions(tmp_path, argv, fragment):
    assert_one_line_error([*argv, "--quiet", "--out", str(tmp_path / "out")], fragment)
    assert not (tmp_path / "out").exists()  # refused before the output folder is made


@pytest.mark.parametrize("command", [["bench", "--strategies", "random", "--queries", "2", "--seeds", "1"],
                                     ["proxies", "--proxies", "params", "--archs", "1"],
                                     ["zero-cost", "--proxy", "params", "--samples", "1", "--seeds", "1"],
                                     ["optbench", "--optimizers", "uniform", "--dim", "1", "--steps", "2", "--runs", "1"]])
def test_an_output_folder_that_cannot_be_made(tmp_path, command):
    (tmp_path / "file").write_text("x")
    for out, fragment in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "sub", "Not a directory"),
                          ("", "empty")):
        assert_one_line_error([*command, "--quiet", "--out", str(out)], fragment)


def test_valid_edge_values_run(tmp_path):
    for argv in (["bench", "--strategies", "random,evolution", "--seconds", "1e-3", "--seeds", "2"],  # no query fits
                 ["proxies", "--proxies", "params", "--archs", "1", "--seed", str(2**32 - 1), "--device", "cpu:0"],
                 ["zero-cost", "--proxy", "params", "--samples", "1,1", "--seeds", "1"],
                 ["optbench", "--optimizers", "cmaes,uniform", "--dim", "2", "--steps", "1", "--runs", "1",
                  "--seed", str(2**32 - 1)]):
        code, _, err = run_cli([*argv, "--quiet", "--out", str(tmp_path / argv[0])])
        assert code == 0, err


# -- devices ------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=12), st.sampled_from(DEVICES), st.integers(), st.none(), st.floats()))
def test_a_device_is_resolved_or_refused(name):
    device = returns_or_raises_ours(resolve_device, name)
    assert device is None or isinstance(device, torch.device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:7", "mps", "foo", "meta"])
@pytest.mark.parametrize("command", [["proxies", "--proxies", "snip", "--data", "digits", "--archs", "1"],
                                     ["zero-cost", "--proxy", "params", "--samples", "1", "--seeds", "1"]])
def test_a_device_this_machine_lacks_is_one_line(tmp_path, name, command):
    assert_one_line_error([*command, "--device", name, "--quiet", "--out", str(tmp_path)], "device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_devices_on_a_machine_with_cuda():
    assert resolve_device("cuda").type == "cuda" and resolve_device(None).type == "cuda"
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("gpu")
    with pytest.raises(DeviceError, match="a device is a string"):
        resolve_device(0.5)


# -- the API ------------------------------------------------------------------------------------
ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.integers(10**6, 10**20), st.floats(),
                     st.text(max_size=6), st.lists(st.integers(), max_size=2))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["seeds", "queries", "seconds", "workers", "batch", "first_seed", "executor", "objective",
                        "options", "strategies", "dataset", "space"]), ANYTHING)
def test_run_bench_refuses_bad_arguments_before_any_work(key, value):
    arguments = {"strategies": "random", "seeds": 1, "queries": 2, "quiet": True}
    if key == "seconds":
        arguments.pop("queries")
    arguments[key] = value
    returns_or_raises_ours(run_bench, **arguments)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["dim", "steps", "runs", "seed", "optimizers", "function"]), ANYTHING)
def test_optbench_refuses_bad_arguments(key, value):
    arguments = {"function": "rastrigin", "dim": 1, "optimizers": ["uniform"], "lrs": [(0.1, False)], "steps": 2,
                 "runs": 1, "seed": 0, key: value}
    returns_or_raises_ours(optbench, **arguments)


def test_an_empty_archs_file_and_a_binary_one(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing\n")
    (tmp_path / "binary.txt").write_bytes(b"\x1f\x8b\xff\xfe")
    for name, fragment in (("empty.txt", "lists no architectures"), ("binary.txt", "not UTF-8"),
                           ("missing.txt", "does not exist")):
        assert_one_line_error(["proxies", "--proxies", "params", "--archs-file", str(tmp_path / name), "--quiet",
                               "--out", str(tmp_path / "out")], fragment)
    assert_one_line_error(["proxies", "--proxies", "params", "--archs-file", str(tmp_path), "--out",
                           str(tmp_path / "out")], "is a directory, not a file")


def test_budget_refuses_what_would_never_end():
    from archsearch.strategies import Budget

    for queries, seconds in ((2.5, None), (True, None), (None, float("inf")), (None, float("nan"))):
        with pytest.raises(ConfigError):
            Budget(queries, seconds)

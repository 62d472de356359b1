"""Faults a run survives: kill -9 anywhere, damaged or foreign checkpoints, a NaN loss, resume with
changed settings, a full disk, an unwritable or shared run directory, the umask, non-regular outputs.

The oracle is always an uninterrupted run: a faulty run, once resumed, must end bit for bit where the
uninterrupted one ended (``fault_injection.differences``: every file, checkpoints included, wall-clock
times aside).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import math
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from archsearch.cli import main
from archsearch.search.loop import DifferentiableSearch
from archsearch.utils import io as aio
from archsearch.utils.checkpoint import HEADER_SIZE, MAGIC, CheckpointStore, encode
from archsearch.utils.io import TEMP_PATTERN, read_jsonl, write_bytes_atomic
from archsearch.utils.rundir import LOCK_NAME, lock_run_dir

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("fault_injection", ROOT / "benchmarks" / "fault_injection.py")
fi = importlib.util.module_from_spec(_spec)
sys.modules["fault_injection"] = fi
_spec.loader.exec_module(fi)

GOOD_CELL = fi.GOOD_CELL


def search_argv(out, *overrides, method="darts", epochs=3):
    """The benchmark's tiny search (3 epochs); what the oracles below ran."""
    return fi.search_argv(method, out, *overrides, *([f"epochs={epochs}"] if epochs != 3 else []))


def train_argv(out, *overrides, epochs=3):
    return fi.train_argv(out, *overrides) + (["--epochs", str(epochs)] if epochs != 3 else [])


@pytest.fixture(autouse=True)
def _restore_deterministic_mode():
    """A deterministic run switches torch's deterministic algorithms on for the whole process."""
    previous = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(previous)


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv) -> str:
    code, _, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("archsearch: error: "), err
    return lines[0]


def files(directory: Path) -> dict[str, bytes]:
    """The contents of a run directory; temporary files of atomic writes are checked for apart."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not TEMP_PATTERN.match(p.name)}


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if TEMP_PATTERN.match(p.name)]


def copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """An uninterrupted tiny DARTS search (3 epochs): the oracle of the search tests."""
    out = tmp_path_factory.mktemp("searched") / "run"
    assert main(search_argv(out)) == 0
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An uninterrupted tiny training (3 epochs): the oracle of the training tests."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_argv(out)) == 0
    return out


# ---- kill -9 ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_9_anywhere_then_resume_ends_bit_identical(searched, trained, tmp_path):
    """23 SIGKILLs over darts, balenas, gdas and train (mid-epoch, at a time, and half-way through, after,
    and between the renames of every kind of write), each run resumed after each kill, against
    uninterrupted runs made in this process (the killed ones run in processes forked from a separate one)."""
    references = {"darts": searched, "train": trained}
    for method in ("balenas", "gdas"):
        references[method] = tmp_path / "reference" / method
        assert main(fi.search_argv(method, references[method])) == 0
    report = fi.campaign(tmp_path, plan="fixed", references=references)
    planned = sum(len(points) for points in fi.FIXED_PLAN.values())
    assert report.failures == [] and report.partial == []
    assert report.kills == planned >= 20  # every planned point was reached
    assert report.resumes + report.restarts == report.kills and report.restarts == 1  # config.yaml's first write
    assert report.identical == report.resumes
    assert sorted(report.runs_identical) == sorted(fi.RUNS)


# ---- damaged and foreign checkpoints ---------------------------------------------------------------------
def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(searched, tmp_path, capsys, caplog):
    run = copy(searched, tmp_path / "run")
    flip_a_byte(run / "checkpoint.pt")
    code, _, err = cli(capsys, "search", "--resume", run, "--quiet")
    assert code == 0, err
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "checksum mismatch" in warning and "resuming from" in warning and "(epoch 2)" in warning
    assert "\n" not in warning
    # epoch 3 was done again from the epoch-2 checkpoint, and its metrics line rewritten
    assert fi.differences(run, searched) == []


def test_a_truncated_training_checkpoint_falls_back(trained, tmp_path, capsys, caplog):
    run = copy(trained, tmp_path / "run")
    truncate(run / "checkpoint.pt")
    assert cli(capsys, "train", "--resume", run, "--quiet")[0] == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "is truncated" in warning and "checkpoint.prev.pt" in warning
    assert fi.differences(run, trained) == []


def test_the_fallback_warning_is_one_line_on_stderr(searched, tmp_path):
    run = copy(searched, tmp_path / "run")
    flip_a_byte(run / "checkpoint.pt")
    code = f"from archsearch.utils.checkpoint import CheckpointStore; CheckpointStore({str(run)!r}).load()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == (f"archsearch: warning: checkpoint '{run}/checkpoint.pt' is corrupt (checksum mismatch); "
                             f"resuming from '{run}/checkpoint.prev.pt' (epoch 2) instead\n")


def test_a_damaged_stage_checkpoint_of_p_darts_falls_back(tmp_path, capsys, caplog, monkeypatch):
    import archsearch.report.plots

    monkeypatch.setattr(archsearch.report.plots, "plot_search", lambda *a, **k: [])  # 7 s a stage, untested here
    argv = ["search", "--method", "pdarts", "--space", "darts", "--data", "digits", "--deterministic", "--quiet",
            "--seed", "3", "C=4", "layers=3", "epochs=1", "batch_size=32", "arch_warmup_epochs=0", "hessian_every=0",
            "limit_train=64", "driver_options={add_layers: [0, 0], num_ops: [8, 4], skip_dropout: [0.0, 0.3]}"]
    whole = tmp_path / "whole"
    assert main([*argv, "--out", str(whole)]) == 0
    run = copy(whole, tmp_path / "run")
    flip_a_byte(run / "stage2" / "checkpoint.pt")
    code, _, err = cli(capsys, "search", "--resume", run, "--quiet")
    assert code == 0, err
    assert any("checksum mismatch" in r.getMessage() for r in caplog.records)
    assert fi.differences(run, whole) == []


def _rewrite_both(run: Path, change) -> None:
    """Both checkpoints replaced by ``change(state)`` of the newest (encoded with a valid checksum)."""
    state, _ = CheckpointStore(run).load()
    data = change(state)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run / name).write_bytes(data)


def _with(state, **changes):
    return encode({**state, **changes})


def _unpicklable(state):
    payload = b"\x80\x04this is no pickle"
    return MAGIC + struct.pack("<Q", len(payload)) + hashlib.sha256(payload).digest() + payload


FOREIGN = {
    "another configuration": (lambda s: _with(s, config={**s["config"], "C": 8}), "its C is 8, this run's 4"),
    "size mismatch": (lambda s: _with(s, model={**s["model"], next(iter(s["model"])): torch.zeros(3, 3)}),
                      "size mismatch"),
    "unexpected key": (lambda s: _with(s, model={**s["model"], "extra.weight": torch.zeros(1)}),
                       "Unexpected key(s)"),
    "missing key": (lambda s: encode({k: v for k, v in s.items() if k != "w_optimizer"}), "holds no 'w_optimizer'"),
    "unpicklable": (_unpicklable, "cannot be unpickled"),
    "no checkpoint at all": (lambda s: b"PK\x03\x04 not ours", "is not an archsearch checkpoint"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_foreign_or_doubly_damaged_checkpoints_are_one_line(searched, tmp_path, capsys, case):
    run = copy(searched, tmp_path / "run")
    change, fragment = FOREIGN[case]
    _rewrite_both(run, change)
    before = files(run)
    assert fragment in one_line_error(capsys, "search", "--resume", run)
    assert files(run) == before  # nothing written, nothing lost


def test_both_checkpoints_truncated_or_gone_is_one_line(trained, searched, tmp_path, capsys):
    run = copy(trained, tmp_path / "train")
    truncate(run / "checkpoint.pt")
    flip_a_byte(run / "checkpoint.prev.pt")
    line = one_line_error(capsys, "train", "--resume", run)
    assert "truncated" in line and "checksum mismatch" in line and "no good checkpoint" in line
    run = copy(searched, tmp_path / "search")
    (run / "checkpoint.pt").unlink()
    (run / "checkpoint.prev.pt").unlink()
    assert "the checkpoints were removed" in one_line_error(capsys, "search", "--resume", run)


def test_a_training_checkpoint_of_another_run_is_refused(trained, tmp_path, capsys):
    run = copy(trained, tmp_path / "run")
    _rewrite_both(run, lambda s: _with(s, config={**s["config"], "seed": 4}))
    assert "its seed is 4, this run's 3" in one_line_error(capsys, "train", "--resume", run)


# ---- resuming what is not a run --------------------------------------------------------------------------
def _truncated_config(run):
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text[: text.index("\nepochs:")])


BAD_RUNS = {
    "missing": (lambda d, s, t: d / "nothing", "search", "no such directory"),
    "empty": (lambda d, s, t: (d / "empty").mkdir() or d / "empty", "search", "it is empty"),
    "not a run": (lambda d, s, t: (d / "x").mkdir() or (d / "x" / "notes.txt").write_text("hi") and d / "x",
                  "search", "no config.yaml"),
    "a foreign config": (lambda d, s, t: (d / "y").mkdir() or (d / "y" / "config.yaml").write_text("foo: 1\n")
                         and d / "y", "search", "not an archsearch run's"),
    "a training run": (lambda d, s, t: copy(t, d / "t"), "search", "it is a train run"),
    "a search run": (lambda d, s, t: copy(s, d / "s"), "train", "it is a search run"),
    "a truncated config": (lambda d, s, t: _truncated_config(copy(s, d / "s")) or d / "s", "search", "lacks"),
    "an empty config": (lambda d, s, t: (copy(t, d / "t") / "config.yaml").write_text("") or d / "t", "train",
                        "damaged"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_resuming_what_is_no_run_of_that_kind_is_one_line(searched, trained, tmp_path, capsys, case):
    make, command, fragment = BAD_RUNS[case]
    path = make(tmp_path, searched, trained)
    assert fragment in one_line_error(capsys, command, "--resume", path)


# ---- NaN -------------------------------------------------------------------------------------------------
def test_a_nan_loss_stops_in_one_line_and_resumes_with_a_lower_learning_rate(searched, trained, tmp_path, capsys):
    run = tmp_path / "search"
    line = one_line_error(capsys, *search_argv(run, "w_lr=1e30"))
    assert "loss is nan" in line and f"archsearch search --resume {run} w_lr=" in line
    # it died in epoch 1: from the epoch-0 checkpoint, w_lr=0.025 is the uninterrupted run at that rate
    assert cli(capsys, "search", "--resume", run, "w_lr=0.025", "--quiet")[0] == 0
    assert fi.differences(run, searched) == []
    run = tmp_path / "train"
    line = one_line_error(capsys, *train_argv(run, "lr=1.0e+30"))
    assert "loss is nan" in line and f"archsearch train --resume {run} lr=" in line
    assert cli(capsys, "train", "--resume", run, "lr=0.1", "--quiet")[0] == 0
    assert fi.differences(run, trained) == []


def test_a_nan_mid_run_keeps_the_last_good_checkpoint(searched, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    weight_step = DifferentiableSearch.weight_step

    def poisoned(self, batch, meter):  # epoch 2's first step diverges
        loss = weight_step(self, batch, meter)
        return loss * math.nan if self.epoch == 1 else loss

    monkeypatch.setattr(DifferentiableSearch, "weight_step", poisoned)
    line = one_line_error(capsys, *search_argv(run))
    assert "training loss is nan at epoch 2, step 1" in line
    assert CheckpointStore(run).load()[0]["epoch"] == 1 and len(read_jsonl(run / "metrics.jsonl")) == 1
    assert fi.partial_files(run, finished=True) == []
    monkeypatch.undo()
    resumed = [copy(run, tmp_path / f"resumed{i}") for i in range(2)]
    for out in resumed:
        assert cli(capsys, "search", "--resume", out, "w_lr=0.01", "arch_lr=2e-4", "--quiet")[0] == 0
    assert fi.differences(*resumed) == []  # the same change gives the same run
    config = yaml.safe_load((resumed[0] / "config.yaml").read_text())
    assert (config["w_lr"], config["arch_lr"]) == (0.01, 2e-4)
    lines = read_jsonl(resumed[0] / "metrics.jsonl")
    assert fi._strip(lines[0]) == fi._strip(read_jsonl(searched / "metrics.jsonl")[0])
    # the cosine re-planned from 0.01 to w_lr_min 0.001 over the 3 epochs: after epoch 2 it stands at 2/3
    assert lines[1]["lr"] == pytest.approx(0.001 + 0.009 * (1 + math.cos(2 * math.pi / 3)) / 2)


def test_nan_weights_after_an_epoch_never_reach_the_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    train_epoch = DifferentiableSearch.train_epoch

    def poisoned(self):
        stats = train_epoch(self)
        if self.epoch == 1:
            with torch.no_grad():
                self.weights[0].view(-1)[0] = math.inf
        return stats

    monkeypatch.setattr(DifferentiableSearch, "train_epoch", poisoned)
    assert "non-finite values after epoch 2" in one_line_error(capsys, *search_argv(run))
    assert CheckpointStore(run).load()[0]["epoch"] == 1


# ---- resume with changes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("change, key", [(["C=8"], "C"), (["--space", "darts"], "space"),
                                         (["--method", "gdas"], "method"), (["--seed", "4"], "seed"),
                                         (["--data", "synthetic"], "data"), (["batch_size=64"], "batch_size")])
def test_search_resume_refuses_what_defines_the_run(searched, capsys, change, key):
    before = files(searched)
    line = one_line_error(capsys, "search", "--resume", searched, *change)
    assert f"cannot change '{key}' when resuming" in line
    assert files(searched) == before


@pytest.mark.parametrize("change, key", [(["--C", "8"], "network"), (["batch_size=64"], "batch_size"),
                                         (["--seed", "4"], "seed"), (["--data", "synthetic"], "dataset"),
                                         (["|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|skip_connect~0|"
                                           "nor_conv_1x1~1|nor_conv_1x1~2|"], "genotype")])
def test_train_resume_refuses_what_defines_the_run(trained, capsys, change, key):
    before = files(trained)
    line = one_line_error(capsys, "train", "--resume", trained, *change)
    assert f"cannot change '{key}' when resuming" in line
    assert files(trained) == before


def test_more_epochs_continue_a_finished_search_the_same_way_each_time(searched, tmp_path, capsys, monkeypatch):
    again = [copy(searched, tmp_path / f"again{i}") for i in range(2)]
    assert cli(capsys, "search", "--resume", again[0], "epochs=5", "hessian_every=2", "--quiet")[0] == 0
    lines = read_jsonl(again[0] / "metrics.jsonl")
    assert fi._strip(lines[:3]) == fi._strip(read_jsonl(searched / "metrics.jsonl"))
    assert [r["hessian_max_eigenvalue"] is None for r in lines[3:]] == [False, True]  # epochs 4, 5
    # the cosine is re-planned over 5 epochs from 0.025 to 0.001: after epoch 4 it stands at 4/5
    assert lines[3]["lr"] == pytest.approx(0.001 + 0.024 * (1 + math.cos(4 * math.pi / 5)) / 2)
    assert yaml.safe_load((again[0] / "config.yaml").read_text())["epochs"] == 5
    # the same change again, interrupted after epoch 4, then a plain resume (config.yaml holds the change):
    # the same run
    train_epoch = DifferentiableSearch.train_epoch

    def interrupted(self):
        if self.epoch == 4:
            raise KeyboardInterrupt
        return train_epoch(self)

    monkeypatch.setattr(DifferentiableSearch, "train_epoch", interrupted)
    assert cli(capsys, "search", "--resume", again[1], "epochs=5", "hessian_every=2", "--quiet")[0] == 130
    monkeypatch.undo()
    assert len(read_jsonl(again[1] / "metrics.jsonl")) == 4
    assert cli(capsys, "search", "--resume", again[1], "--quiet")[0] == 0
    assert fi.differences(again[1], again[0]) == []


def test_more_epochs_continue_a_finished_training(trained, tmp_path, capsys):
    again = [copy(trained, tmp_path / f"again{i}") for i in range(2)]
    for out in again:
        assert cli(capsys, "train", "--resume", out, "--epochs", "5", "--quiet")[0] == 0
    assert fi.differences(again[0], again[1]) == []
    lines = read_jsonl(again[0] / "metrics.jsonl")
    assert fi._strip(lines[:3]) == fi._strip(read_jsonl(trained / "metrics.jsonl"))
    # nb201's cosine (per step, lr 0.1 to 0) re-planned over 5 epochs: epoch 4 starts at 3/5 of the way
    assert lines[3]["lr"] == pytest.approx(0.1 * (1 + math.cos(3 * math.pi / 5)) / 2)
    assert yaml.safe_load((again[0] / "config.yaml").read_text())["recipe"]["epochs"] == 5
    assert "cannot lower epochs to 4" in one_line_error(capsys, "train", "--resume", again[0], "epochs=4")


def test_optimizers_that_plan_their_own_steps_refuse_those_changes(tmp_path, capsys):
    run = tmp_path / "xnas"
    assert main(search_argv(run, method="xnas", epochs=1)) == 0
    assert "planned its step sizes" in one_line_error(capsys, "search", "--resume", run, "epochs=2")
    assert "does not take its value" in one_line_error(capsys, "search", "--resume", run, "arch_lr=0.1")


# ---- a full disk, an unwritable directory ----------------------------------------------------------------
def _failing_write(monkeypatch, name: str, n: int, err: int, snapshot: dict, directory: Path, half=False):
    """The n-th write of ``name`` fails with ``err`` (after half its bytes when ``half``); ``snapshot``
    gets the directory as it was just before."""
    write_all, seen = aio._write_all, {"n": 0}

    def failing(fd, data, path):
        if Path(path).name == name:
            seen["n"] += 1
            if seen["n"] == n:
                snapshot.update(files(directory))
                if half:
                    write_all(fd, data[: len(data) // 2], path)
                raise OSError(err, os.strerror(err))
        return write_all(fd, data, path)

    monkeypatch.setattr(aio, "_write_all", failing)


def test_disk_full_while_checkpointing_loses_nothing_and_resumes(searched, tmp_path, capsys, monkeypatch):
    run, before = tmp_path / "run", {}
    _failing_write(monkeypatch, "checkpoint.pt", 3, errno.ENOSPC, before, run)  # epoch 2's checkpoint
    line = one_line_error(capsys, *search_argv(run))
    assert "cannot write" in line and "No space left on device" in line
    assert files(run) == before and not temporaries(run)
    assert len(read_jsonl(run / "metrics.jsonl")) == 2  # epoch 2's line, and no checkpoint after it
    monkeypatch.undo()
    assert cli(capsys, "search", "--resume", run, "--quiet")[0] == 0
    assert fi.differences(run, searched) == []


def test_disk_full_while_appending_metrics_leaves_whole_lines(trained, tmp_path, capsys, monkeypatch):
    run, before = tmp_path / "run", {}
    _failing_write(monkeypatch, "metrics.jsonl", 2, errno.ENOSPC, before, run, half=True)
    assert "No space left on device" in one_line_error(capsys, *train_argv(run))
    assert files(run) == before and not temporaries(run)  # the half line was cut off again
    monkeypatch.undo()
    assert cli(capsys, "train", "--resume", run, "--quiet")[0] == 0
    assert fi.differences(run, trained) == []


def test_permission_denied_while_writing_is_one_line(trained, tmp_path, capsys, monkeypatch):
    run, before = copy(trained, tmp_path / "run"), {}
    _failing_write(monkeypatch, "checkpoint.pt", 1, errno.EACCES, before, run)
    assert "Permission denied" in one_line_error(capsys, "train", "--resume", run, "--epochs", "4", "--quiet")
    assert files(run) == before and not temporaries(run)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0555 directory anyway; "
                    "test_permission_denied_while_writing_is_one_line and the /proc case cover the error")
def test_an_unwritable_run_directory_is_one_line(trained, tmp_path, capsys):
    run = copy(trained, tmp_path / "run")
    before = files(run)
    run.chmod(0o555)
    try:
        assert "is not writable" in one_line_error(capsys, "train", "--resume", run, "--epochs", "4", "--quiet")
    finally:
        run.chmod(0o755)
    assert files(run) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux' /proc, which no one may write to")
def test_an_output_folder_no_one_can_write_is_one_line(capsys):
    assert "cannot write '/proc/archsearch-run'" in one_line_error(capsys, *search_argv("/proc/archsearch-run"))


# ---- one writer per run directory -------------------------------------------------------------------------
def test_a_second_process_on_the_same_run_gets_a_clear_error(tmp_path):
    run, go = tmp_path / "run", tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "archsearch.cli", *train_argv(run, epochs=400)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # the second process imports while the first starts, then waits for the go to resume the same run
    second = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, pathlib; import archsearch.evaluate.train; from archsearch.cli import main\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.02)\n"
        f"sys.exit(main(['train', '--resume', {str(run)!r}, '--quiet']))")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "metrics.jsonl").exists():  # the first holds the lock, its run under way
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        go.touch()
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and len(err.strip().splitlines()) == 1, err
        assert f"is in use by another archsearch process (pid {first.pid})" in err
        assert first.poll() is None  # the first run goes on undisturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        second.kill()
    assert fi.partial_files(run, finished=False) == []
    with lock_run_dir(run, create=False):  # kill -9 released the lock
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())


def test_the_lock_is_reentrant_here_and_refuses_other_processes(tmp_path):
    with lock_run_dir(tmp_path / "run"):
        with lock_run_dir(tmp_path / "run"):  # the same run, deeper in the same process: fine
            pass
        code = ("import sys; from archsearch.utils.rundir import lock_run_dir\n"
                f"with lock_run_dir({str(tmp_path / 'run')!r}): pass")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "RunDirectoryError" in result.stderr and "in use by another archsearch process" in result.stderr


# ---- modes and paths of what a run writes --------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o027, 0o002], ids=["umask-027-search", "umask-002-train"])
def test_files_a_run_writes_honour_the_umask(tmp_path, capsys, mask):
    previous = os.umask(mask)
    try:
        run = tmp_path / "run"
        argv = search_argv(run, epochs=1) if mask == 0o027 else train_argv(run, epochs=1)
        assert cli(capsys, *argv)[0] == 0
        write_bytes_atomic(tmp_path / "plain.bin", b"x")
    finally:
        os.umask(previous)
    paths = [run, *run.rglob("*"), tmp_path / "plain.bin"]
    assert len(paths) >= 8
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 if path.is_dir() else 0o666) & ~mask, (path, oct(mode))


def test_an_output_that_is_not_a_regular_file_is_never_replaced(tmp_path, capsys):
    fifo, folder = tmp_path / "pipe", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    assert "refusing to replace" in one_line_error(capsys, "show", GOOD_CELL, "--out", fifo)
    assert "a FIFO" in one_line_error(capsys, "show", GOOD_CELL, "--out", fifo)
    assert "a directory" in one_line_error(capsys, "show", GOOD_CELL, "--out", folder)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and folder.is_dir()
    assert not temporaries(tmp_path)
    # a symlink to a file is followed: the file is replaced, the link stays
    target, link = tmp_path / "cells.png", tmp_path / "link.png"
    target.write_bytes(b"old")
    link.symlink_to(target)
    assert cli(capsys, "show", GOOD_CELL, "--out", link)[0] == 0
    assert link.is_symlink() and target.read_bytes().startswith(b"\x89PNG")

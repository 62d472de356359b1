"""A command refused before it writes anything leaves no folder behind: the output folder it made (and the
parents made for it) is removed, a folder that was there before or holds anything is kept."""

from __future__ import annotations

import fcntl
import os

import pytest
from cli_contract import assert_one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.checks import MADE_DIRS, make_dir
from archsearch.utils.rundir import LOCK_NAME, lock_run_dir, remove_unused_dirs

GENOTYPE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY = ["epochs=1", "C=2", "N=1", "batch_size=8", "--quiet"]

#: commands refused after they made their output folder (the data is checked when it is loaded)
REFUSED_LATE = {
    "search": (["search", "--method", "darts", "--data", "cifar10", *TINY], "needs data_dir"),
    "search-pdarts": (["search", "--method", "pdarts", "--data", "cifar10", "--data-dir", "nowhere", "epochs=1",
                       "C=4", "layers=2", "arch_warmup_epochs=0", "--quiet"], "does not exist"),
    "train": (["train", GENOTYPE, "--data", "cifar10", "epochs=1", "batch_size=8", "--quiet"], "needs data_dir"),
    "proxies": (["proxies", "--proxies", "grad_norm", "--archs", "2", "--data", "cifar10", "--quiet"],
                "needs data_dir"),
    "zero-cost": (["zero-cost", "--proxy", "snip", "--samples", "2", "--seeds", "1", "--data", "cifar10", "--quiet"],
                  "needs data_dir"),
}


@pytest.mark.parametrize("command", sorted(REFUSED_LATE))
def test_a_refused_command_removes_the_folders_it_made(tmp_path, command):
    argv, fragment = REFUSED_LATE[command]
    assert_one_line_error([*argv, "--out", str(tmp_path / "new" / "deeper" / "run")], fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(REFUSED_LATE))
def test_a_folder_that_was_there_is_kept_with_what_it_holds(tmp_path, command):
    argv, fragment = REFUSED_LATE[command]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    assert_one_line_error([*argv, "--out", str(tmp_path / "run")], fragment)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    assert_one_line_error([*argv, "--out", str(tmp_path / "empty")], fragment)
    assert (tmp_path / "empty").is_dir()


def test_a_made_folder_that_holds_a_file_is_kept_with_its_parents(tmp_path):
    MADE_DIRS.start()
    make_dir(tmp_path / "a" / "b")
    (tmp_path / "a" / "b" / "scores.csv").write_text("1")
    make_dir(tmp_path / "c")
    assert remove_unused_dirs(MADE_DIRS.stop()) == [tmp_path / "c"]
    assert (tmp_path / "a" / "b" / "scores.csv").exists() and not (tmp_path / "c").exists()


def test_nothing_is_recorded_outside_a_command(tmp_path):
    MADE_DIRS.stop()
    make_dir(tmp_path / "a")  # the library's own use: a long-lived process accumulates nothing
    assert MADE_DIRS.stop() == [] and (tmp_path / "a").is_dir()


def test_a_lock_another_holder_has_keeps_its_folder(tmp_path):
    MADE_DIRS.start()
    with lock_run_dir(tmp_path / "run"):
        pass
    fd = os.open(tmp_path / "run" / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: another holder, as a process is
        assert remove_unused_dirs(MADE_DIRS.stop()) == []
        assert (tmp_path / "run" / LOCK_NAME).exists()
    finally:
        os.close(fd)


NAMES = st.sampled_from(["a", "b"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(tuple)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(made=st.lists(PATHS, min_size=1, max_size=5), files=st.lists(st.tuples(PATHS, st.sampled_from(["x", LOCK_NAME])),
                                                                      max_size=4),
       others=st.lists(PATHS, max_size=2), index=st.integers(0, 10**6))
def test_exactly_the_made_folders_holding_nothing_but_a_lock_are_removed(tmp_path, made, files, others, index):
    root = tmp_path / f"case{index}-{os.urandom(4).hex()}"
    root.mkdir()
    MADE_DIRS.start()
    for parts in made:
        make_dir(root.joinpath(*parts))
    made_dirs = {d for d in root.rglob("*") if d.is_dir()}
    for parts in others:  # folders some other program made inside: kept, with their parents
        root.joinpath(*parts).mkdir(parents=True, exist_ok=True)
    for parts, name in files:
        folder = root.joinpath(*parts)
        if folder.is_dir() and not (folder / name).exists():
            (folder / name).write_text("")
    # the oracle: a made folder goes iff nothing below it is other than made folders and lock files
    keep = {d for d in made_dirs
            if any(not (p in made_dirs or p.name == LOCK_NAME) for p in d.rglob("*"))}
    removed = set(remove_unused_dirs(MADE_DIRS.stop()))
    assert removed == made_dirs - keep
    assert all(d.is_dir() for d in keep) and not any(d.exists() for d in removed)
    assert all(root.joinpath(*parts).is_dir() for parts in others if root.joinpath(*parts) not in made_dirs)

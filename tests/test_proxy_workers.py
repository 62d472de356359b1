"""Scoring architectures in worker processes: the scores of a one-thread run, in order, errors reported."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ArchSearchError, ConfigError, UnknownNameError
from archsearch.proxies import score_all
from archsearch.spaces import get_space
from archsearch.studies.pool import imap_ordered, torch_threads, usable_cpus
from archsearch.studies.proxy_scores import DEFAULT_PROXIES, score_architectures

OPTIONS = {"C": 8, "N": 1, "affine": False, "track_running_stats": False}
TWO_CPUS = pytest.mark.skipif(usable_cpus() < 2, reason="two worker processes need two usable CPUs")


def batch(seed: int, n: int = 16):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@TWO_CPUS
def test_workers_give_each_cell_the_scores_of_its_own_one_thread_run():
    """Oracle: score_all of cell i on batch i from seed + i, run alone on one thread in this process."""
    space = get_space("nb201")
    genotypes = [space.sample(s) for s in range(5)]
    drawn = {i: batch(100 + i) for i in range(5)}
    rows = score_architectures(space, genotypes, DEFAULT_PROXIES, None, None, seed=7, network_options=OPTIONS,
                               batches=drawn.__getitem__, workers=2)
    assert [r["arch"] for r in rows] == [space.to_string(g) for g in genotypes]
    with torch_threads(1):
        for i, (genotype, row) in enumerate(zip(genotypes, rows)):
            x, y = drawn[i]
            expected = score_all(DEFAULT_PROXIES, lambda g=genotype: space.network(g, 10, **OPTIONS), x, y, seed=7 + i)
            assert all(same(row[name], expected[name]) for name in DEFAULT_PROXIES), (i, row, expected)
            assert row["seconds"] > 0


@TWO_CPUS
def test_one_cell_with_workers_is_scored_on_one_thread_here():
    """Nothing to share: the cell is scored in this process, and as a worker would (one thread), whatever
    this process's thread count (which changes the convolutions' rounding)."""
    space = get_space("nb201")
    genotype, (x, y) = space.sample(3), batch(5, n=32)
    with torch_threads(2):
        (row,) = score_architectures(space, [genotype], DEFAULT_PROXIES, x, y, seed=1, network_options=OPTIONS,
                                     workers=2)
        assert torch.get_num_threads() == 2  # put back
    with torch_threads(1):
        expected = score_all(DEFAULT_PROXIES, lambda: space.network(genotype, 10, **OPTIONS), x, y, seed=1)
    assert all(same(row[name], expected[name]) for name in DEFAULT_PROXIES), (row, expected)


@TWO_CPUS
def test_zero_cost_baseline_with_workers_picks_as_without():
    from archsearch.studies.proxy_data import shape_batch
    from archsearch.studies.zero_cost import zero_cost_baseline

    space, (x, y) = get_space("nb201"), shape_batch()
    with torch_threads(1):
        alone = zero_cost_baseline(space, "synflow", [2, 4], [0, 1], x, y, network_options={"C": 4, "N": 1})
    shared = zero_cost_baseline(space, "synflow", [2, 4], [0, 1], x, y, network_options={"C": 4, "N": 1}, workers=2)
    assert shared == alone


@settings(max_examples=40, deadline=None)
@given(durations=st.lists(st.integers(0, 3), max_size=25), window=st.integers(1, 5), threads=st.integers(1, 4))
def test_ordered_map_keeps_order_and_draws_jobs_only_as_room_frees(durations, window, threads):
    drawn, collected, lock = [], [], threading.Lock()

    def jobs():
        for k, duration in enumerate(durations):
            with lock:
                drawn.append(k)
                assert len(drawn) - len(collected) <= window  # never more than the window in flight
            yield k, duration

    def slow_square(job):
        k, duration = job
        threading.Event().wait(0.001 * duration)  # later jobs may finish first
        return k * k

    for value in imap_ordered(slow_square, jobs(), ThreadPoolExecutor(threads), window=window):
        collected.append(value)
    assert collected == [k * k for k in range(len(durations))]


def _die_on_three(k):
    if k == 3:
        os._exit(1)  # as a worker killed by the system would vanish
    return k


def _unknown_name(k):
    raise UnknownNameError("proxy", "snipp", ["snip", "synflow"])


@TWO_CPUS
def test_a_worker_that_dies_is_one_error_of_ours():
    with pytest.raises(ArchSearchError, match="worker process died"):
        list(imap_ordered(_die_on_three, range(8), ProcessPoolExecutor(2), window=4))


@TWO_CPUS
def test_a_study_whose_worker_dies_stops_with_one_error_of_ours():
    """bench and compare run their jobs through run_jobs, on the same ordered map."""
    from archsearch.studies.pool import run_jobs

    with pytest.raises(ArchSearchError, match="worker process died"):
        run_jobs(_die_on_three, list(range(8)), ProcessPoolExecutor(2))
    assert run_jobs(_die_on_three, [0, 1, 2], ProcessPoolExecutor(2)) == [0, 1, 2]


@TWO_CPUS
def test_a_jobs_own_error_crosses_the_pool_with_its_type():
    with pytest.raises(UnknownNameError, match="did you mean 'snip'"):
        list(imap_ordered(_unknown_name, range(4), ProcessPoolExecutor(2), window=2))


@pytest.mark.parametrize("workers", [0, -1, 2.0, "2", True, None, 10**6])
def test_bad_worker_counts_are_refused_before_any_scoring(workers):
    space = get_space("nb201")
    x, y = batch(0)
    with pytest.raises(ConfigError, match="workers"):
        score_architectures(space, [space.sample(0)], ["params"], x, y, network_options=OPTIONS, workers=workers)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA refuses the device itself")
def test_workers_on_an_accelerator_are_refused():
    space = get_space("nb201")
    x, y = batch(0)
    with pytest.raises(ArchSearchError):
        score_architectures(space, [space.sample(0)] * 2, ["params"], x, y, device="cuda", workers=2)


@TWO_CPUS
def test_proxies_command_with_workers_writes_the_one_thread_scores(tmp_path):
    import csv

    from archsearch.cli.studies import add_proxies_arguments, cmd_proxies

    parser = argparse.ArgumentParser()
    add_proxies_arguments(parser)
    rows = {}
    for workers in (1, 2):
        out = tmp_path / str(workers)
        args = parser.parse_args(["--proxies", "synflow,params,flops", "--archs", "4", "--seed", "3",
                                  "--workers", str(workers), "--out", str(out), "--quiet"])
        with torch_threads(1):  # the inline run on one thread: the oracle of the workers' scores
            assert cmd_proxies(args) == 0
        with open(out / "scores.csv") as handle:
            rows[workers] = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(handle)]
    assert len(rows[2]) == 4 and rows[2] == rows[1]


class _EagerRay:
    """Ray's API as RayPool uses it (init, remote tasks, get), running each task at once in this process."""

    def __init__(self):
        self.submitted = 0

    def is_initialized(self):
        return True

    def remote(self, num_cpus):
        ray = self

        class Task:
            def __init__(self, fn):
                self.fn = fn

            def remote(self, *args):
                ray.submitted += 1
                with torch_threads(torch.get_num_threads()):  # a task's thread count is its worker's own
                    return ("ref", self.fn(*args))

        return Task

    def get(self, ref):
        return [r[1] for r in ref] if isinstance(ref, list) else ref[1]


def test_scoring_as_ray_tasks_goes_through_ray_and_keeps_the_order(monkeypatch):
    import sys

    fake = _EagerRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    space = get_space("nb201")
    genotypes = [space.sample(s) for s in range(3)]
    x, y = batch(0)
    rows = score_architectures(space, genotypes, ["params", "synflow"], x, y, network_options=OPTIONS,
                               ray_address="auto")
    assert fake.submitted == 3
    with torch_threads(1):
        for genotype, row in zip(genotypes, rows):
            expected = score_all(["params", "synflow"], lambda g=genotype: space.network(g, 10, **OPTIONS), x, y)
            assert row["arch"] == space.to_string(genotype)
            assert row["params"] == expected["params"] and row["synflow"] == expected["synflow"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the optional 'ray' extra is not installed")
def test_scoring_on_a_local_ray_instance_matches_workers():
    space = get_space("nb201")
    genotypes = [space.sample(s) for s in range(3)]
    x, y = batch(1)
    on_ray = score_architectures(space, genotypes, ["snip", "synflow"], x, y, network_options=OPTIONS,
                                 ray_address="local", workers=2)
    with torch_threads(1):
        here = score_architectures(space, genotypes, ["snip", "synflow"], x, y, network_options=OPTIONS)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in on_ray] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in here]


@pytest.mark.parametrize("flags", [["--workers", "0"], ["--workers", str(usable_cpus() + 1)],
                                   ["--ray-address", "nowhere:1"]])
@pytest.mark.parametrize("command", ["proxies", "zero-cost"])
def test_bad_workers_are_refused_before_the_output_directory_is_made(tmp_path, command, flags):
    from archsearch.cli import main

    out = tmp_path / "out"
    tail = ["--archs", "2", "--proxies", "params"] if command == "proxies" else ["--samples", "2", "--seeds", "1",
                                                                                 "--proxy", "params"]
    assert main([command, *tail, *flags, "--out", str(out), "--quiet"]) == 2
    assert not out.exists()

"""Run utilities: deterministic kernels for a block only, seeds, and a checkpoint's random state."""

from __future__ import annotations

import random

import numpy as np
import torch

from archsearch.runtime import deterministic, rng_states, seed_everything, set_rng_states


def test_deterministic_switches_on_for_the_block_and_restores_what_was_set():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.backends.cudnn.benchmark = True
    try:
        with deterministic(True):
            assert torch.are_deterministic_algorithms_enabled()
            assert not torch.backends.cudnn.benchmark
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark
        with deterministic(False):  # changes nothing
            assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def test_deterministic_restores_even_when_the_block_raises():
    try:
        with deterministic(True):
            raise KeyError("x")
    except KeyError:
        pass
    assert not torch.are_deterministic_algorithms_enabled()


def test_a_search_leaves_deterministic_kernels_as_it_found_them(tmp_path):
    from archsearch.data import load_dataset
    from archsearch.search.loop import DifferentiableSearch
    from archsearch.search.resolve import resolve_config

    config = resolve_config("darts", overrides={"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "limit_train": 64,
                                                "hessian_every": 0, "deterministic": True})
    DifferentiableSearch(config, quiet=True, dataset=load_dataset("digits", quiet=True)).run()
    assert not torch.are_deterministic_algorithms_enabled()


def test_rng_states_round_trip():
    seed_everything(7)
    saved = rng_states()
    first = (random.random(), float(np.random.rand()), float(torch.rand(())))
    set_rng_states(saved)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == first

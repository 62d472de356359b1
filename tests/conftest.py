"""Shared test fixtures: where ../shared is, and a marker for tests that need it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the shared data folder: ``../shared`` beside the checkout, or where ARCHSEARCH_SHARED points
SHARED = Path(os.environ.get("ARCHSEARCH_SHARED") or ROOT.parent / "shared")
SHARED_CIFAR10 = SHARED / "data" / "cifar10" / "cifar10-jpeg.tar.gz"
SHARED_NB201 = SHARED / "data" / "nb201" / "nb201.csv.gz"
SHARED_PTB = SHARED / "data" / "ptb"

needs_shared = pytest.mark.skipif(
    not SHARED_CIFAR10.is_file(),
    reason=f"needs the shared data folder ({SHARED}), which only development machines and CI have",
)
needs_ptb = pytest.mark.skipif(
    not (SHARED_PTB / "ptb.tar.gz").is_file(),
    reason=f"needs Penn Treebank in the shared data folder ({SHARED_PTB}/ptb.tar.gz), which only development "
           "machines and CI have",
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Decoded-dataset caches go to a per-run temporary folder, never the user's home."""
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "archsearch-cache"))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The suite's networks are tiny: one intra-op thread is faster than two contending, and
    results do not depend on the machine's core count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

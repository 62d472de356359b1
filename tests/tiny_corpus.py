"""A tiny corpus in PTB's layout (a space before each line, words apart by spaces), for language-model tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from archsearch.data.ptb import PTBChecksumWarning


def write_corpus(folder: Path, words: int, seed: int, lines: tuple[int, int, int], longest: int) -> Path:
    """train/valid/test.txt of (train, valid, test) ``lines`` lines, each of 3 to ``longest`` - 1 words drawn from
    ``words`` types: small enough that every valid and test word occurs in train."""
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" for i in range(words)]
    for split, count in zip(("train", "valid", "test"), lines):
        text = "".join(" " + " ".join(rng.choice(vocabulary, rng.integers(3, longest))) + " \n"
                       for _ in range(count))
        (folder / f"{split}.txt").write_text(text)
    return folder


@pytest.fixture(autouse=True)
def no_checksum_warnings():
    """The tiny corpora are not PTB: its md5 check would warn on each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBChecksumWarning)
        yield

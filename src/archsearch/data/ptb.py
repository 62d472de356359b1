"""The Penn Treebank word-level corpus (Mikolov's preprocessed form) for language modelling.

``load_ptb(data_dir)`` reads ``train.txt``, ``valid.txt`` and ``test.txt`` (or Mikolov's ``ptb.train.txt``
names) from a folder, from a ``.tar.gz`` of them, or from a folder holding ``ptb.tar.gz``. Tokens are read as
quark0/darts ``rnn/data.py`` (lines 34-56) and salesforce/awd-lstm-lm ``data.py`` (lines 34-56) read them:
each line split on white space with ``<eos>`` appended, the vocabulary built from train in order of first
appearance (10,000 words, ``<eos>`` included). Unlike those loaders, valid and test never add words: a word
of theirs missing from train is an error (the shared copy has none).

A checksum different from the published one (``MD5``) is a warning, not an error: a copy with other line
endings or a re-encoded archive may hold the same tokens, and the counts and vocabulary are what the
language model depends on. A missing file, undecodable text or an unknown word is a ``DataError``.

Batching follows the references: ``batchify`` (darts rnn/utils.py:15-22), ``get_batch`` (utils.py:25-29),
and ``bptt_length``, the random sequence length of AWD-LSTM's training loop (darts rnn/train.py:169-176).
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from archsearch.data.files import open_source, source_path
from archsearch.errors import DataError, ShapeError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
#: the md5 of each file of Mikolov's distribution (the ones public PTB loaders check)
MD5 = {"train": "f26c4b92c5fdc7b3f8c7cdcb991d8420", "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
       "test": "8b80168b89c18661a38ef683c0dc3721"}
ARCHIVE = "ptb.tar.gz"
EXPECTED = ("expected a folder holding train.txt, valid.txt and test.txt (or ptb.train.txt, ...), "
            f"its .tar.gz, or a folder holding {ARCHIVE}")


class PTBChecksumWarning(UserWarning):
    """A PTB file whose md5 differs from Mikolov's distribution; its tokens are still read."""


@dataclass(frozen=True)
class PTBCorpus:
    """Token ids of each split (1-D LongTensors, ``<eos>`` closing every line) and the vocabulary."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: list[str]
    word_to_id: dict[str, int]

    @property
    def ntokens(self) -> int:
        """Vocabulary size (the language model's input and output width)."""
        return len(self.vocab)

    def split(self, name: str) -> torch.Tensor:
        return getattr(self, name)


def _find(names: list[str], split: str) -> str | None:
    wanted = (f"{split}.txt", f"ptb.{split}.txt")
    found = [n for n in names if posixpath.basename(n) in wanted]
    if len(found) > 1:  # two copies of one split: reading either would be a guess
        raise DataError(f"{len(found)} files could be the {split} split ({', '.join(found[:3])}); keep one")
    return found[0] if found else None


def _read_texts(data_dir) -> dict[str, bytes]:
    path = source_path(data_dir, "ptb", EXPECTED)
    if path.is_dir() and not any((path / f).is_file() for s in SPLITS for f in (f"{s}.txt", f"ptb.{s}.txt")) \
            and (path / ARCHIVE).is_file():
        path = path / ARCHIVE
    files = open_source(path, "ptb", EXPECTED)
    texts = {}
    for split in SPLITS:
        name = _find(files.names, split)
        if name is None:
            raise DataError(f"{path} holds no {split}.txt; {EXPECTED}")
        texts[split] = files.read(name)
    return texts


def _lines(split: str, raw: bytes) -> list[list[str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"the PTB {split} file is not UTF-8 text (byte {err.start}); {EXPECTED}") from None
    # splitlines would also break at \x0b, \x1c, ... inside a line; the references iterate the file by \n
    return [line.split() + [EOS] for line in text.split("\n")[: -1 if text.endswith("\n") else None]]


def tokenize(texts: dict[str, bytes]) -> PTBCorpus:
    """Token ids of the three splits, the vocabulary built from train in order of first appearance."""
    word_to_id: dict[str, int] = {}
    lines = {split: _lines(split, texts[split]) for split in SPLITS}
    for words in lines["train"]:
        for word in words:
            word_to_id.setdefault(word, len(word_to_id))
    ids = {}
    for split in SPLITS:
        flat = [word for words in lines[split] for word in words]
        try:
            ids[split] = torch.tensor([word_to_id[word] for word in flat], dtype=torch.long)
        except KeyError as err:
            raise DataError(f"the PTB {split} split has the word {err.args[0]!r:.60}, which train never uses; "
                            "the corpus is damaged or not PTB") from None
        if len(flat) < 2:
            raise DataError(f"the PTB {split} split holds {len(flat)} tokens; a language model needs at least 2")
    return PTBCorpus(ids["train"], ids["valid"], ids["test"], list(word_to_id), word_to_id)


def load_ptb(data_dir: str | os.PathLike) -> PTBCorpus:
    """The corpus at ``data_dir`` (see the module's docstring); warns (``PTBChecksumWarning``) on an md5
    other than Mikolov's."""
    texts = _read_texts(data_dir)
    for split, raw in texts.items():
        digest = hashlib.md5(raw).hexdigest()
        if digest != MD5[split]:
            warnings.warn(f"PTB {split} file has md5 {digest}, not Mikolov's {MD5[split]}: reading it anyway",
                          PTBChecksumWarning, stacklevel=2)
    return tokenize(texts)


# -- batching ------------------------------------------------------------------------------------
def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(steps, batch): the stream cut into ``batch_size`` contiguous columns, the tail that does not fill a
    row dropped (darts rnn/utils.py:15-22)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ShapeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    steps = tokens.size(0) // batch_size
    if steps < 2:
        raise ShapeError(f"{tokens.size(0)} tokens make {steps} steps of batch {batch_size}; "
                         "a language model needs at least 2")
    return tokens[: steps * batch_size].view(batch_size, steps).t().contiguous()


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target): ``seq_len`` steps from row ``i`` (fewer at the end), the target one step ahead
    (darts rnn/utils.py:25-29)."""
    seq_len = min(seq_len, len(source) - 1 - i)
    return source[i: i + seq_len], source[i + 1: i + 1 + seq_len]


def bptt_length(bptt: int, rng: np.random.Generator, max_delta: int = 20) -> int:
    """The sequence length of one training step (darts rnn/train.py:169-173, as awd-lstm-lm main.py:180-182):
    ``bptt`` with probability 0.95, else ``bptt / 2``, as the mean of N(mean, 5); the draw truncated to an
    integer, at least 5 and (darts' guard against a rare huge draw) at most ``bptt + max_delta``.
    Draws ``rng.random()`` then ``rng.normal``, the references' order. See ``lr_scale``."""
    mean = bptt if rng.random() < 0.95 else bptt / 2.0
    seq_len = max(5, int(rng.normal(mean, 5)))
    return min(seq_len, bptt + max_delta)


def lr_scale(seq_len: int, bptt: int) -> float:
    """The factor on a step's learning rate, ``seq_len / bptt`` (darts rnn/train.py:175-176): a short
    sequence's mean loss does not weigh as much as a full one's."""
    return seq_len / bptt


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy per token, in nats); inf where that overflows."""
    return math.exp(loss) if loss < 700 else math.inf

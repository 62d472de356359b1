"""Penn Treebank: the shared copy against its documented counts, the reader's errors, and the batching
functions against transcriptions of quark0/darts rnn/utils.py and rnn/train.py."""

from __future__ import annotations

import hashlib
import io
import tarfile
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.data import load_dataset
from archsearch.data.ptb import (
    EOS, MD5, PTBChecksumWarning, batchify, bptt_length, get_batch, load_ptb, lr_scale, tokenize,
)
from archsearch.errors import DataError, ShapeError
from conftest import SHARED_PTB, needs_ptb

# counts from the shared data folder's README (tokens: words plus one <eos> a line)
TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}
LINES = {"train": 42_068, "valid": 3_370, "test": 3_761}


@pytest.fixture(scope="module")
def corpus():
    return load_ptb(SHARED_PTB)


def _reference_vocabulary(raw: bytes) -> list[str]:
    """rnn/data.py Dictionary.add_word over train's lines, each with <eos> appended."""
    idx2word, word2idx = [], {}
    for line in io.StringIO(raw.decode("utf-8")):
        for word in line.split() + ["<eos>"]:
            if word not in word2idx:
                idx2word.append(word)
                word2idx[word] = len(idx2word) - 1
    return idx2word


@needs_ptb
def test_the_shared_corpus_has_the_documented_counts_and_vocabulary(corpus):
    for split, count in TOKENS.items():
        tokens = corpus.split(split)
        assert tokens.dtype == torch.long and tokens.shape == (count,)
        assert int((tokens == corpus.word_to_id[EOS]).sum()) == LINES[split]
        assert 0 <= int(tokens.min()) and int(tokens.max()) < 10_000
    assert corpus.ntokens == len(corpus.vocab) == 10_000 and "<unk>" in corpus.word_to_id
    with tarfile.open(SHARED_PTB / "ptb.tar.gz") as archive:
        raw = archive.extractfile("train.txt").read()
    assert corpus.vocab == _reference_vocabulary(raw)
    assert all(corpus.word_to_id[w] == i for i, w in enumerate(corpus.vocab))
    words = raw.decode().split("\n")[0].split()
    assert corpus.vocab[int(corpus.train[0])] == words[0]


@needs_ptb
def test_the_archive_itself_and_its_folder_read_the_same(corpus):
    direct = load_ptb(SHARED_PTB / "ptb.tar.gz")
    assert torch.equal(direct.test, corpus.test) and direct.vocab == corpus.vocab


def _folder(tmp_path, texts: dict[str, str], names=("train.txt", "valid.txt", "test.txt")):
    for name, split in zip(names, ("train", "valid", "test")):
        if split in texts:
            (tmp_path / name).write_text(texts[split])
    return tmp_path


SMALL = {"train": " the cat sat\n a dog sat \n", "valid": " a cat\n", "test": " the dog\n"}


def test_a_small_folder_is_read_as_the_reference_tokenizes_it(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = load_ptb(_folder(tmp_path, SMALL))
    assert corpus.vocab == ["the", "cat", "sat", EOS, "a", "dog"]
    assert corpus.train.tolist() == [0, 1, 2, 3, 4, 5, 2, 3]
    assert corpus.valid.tolist() == [4, 1, 3] and corpus.test.tolist() == [0, 5, 3]
    assert {type(w.message) for w in caught} == {PTBChecksumWarning}  # not Mikolov's files: a warning each
    assert len(caught) == 3 and "md5" in str(caught[0].message)


def test_mikolovs_file_names_and_a_tar_archive_are_read(tmp_path):
    (tmp_path / "f").mkdir()
    folder = _folder(tmp_path / "f", SMALL, ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"))
    archive = tmp_path / "ptb.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="simple-examples/data")
    with pytest.warns(PTBChecksumWarning):
        a, b = load_ptb(folder), load_ptb(archive)
    assert a.vocab == b.vocab and torch.equal(a.train, b.train)


@pytest.mark.parametrize("case, message", [
    ("unknown", "the PTB test split has the word 'bird', which train never uses"),
    ("missing", "holds no valid.txt"),
    ("corrupt", "is not a readable folder or tar archive"),
    ("binary", "the PTB train file is not UTF-8 text"),
    ("nowhere", "does not exist"),
])
def test_bad_corpora_are_one_line_data_errors(tmp_path, case, message):
    if case == "unknown":
        path = _folder(tmp_path, {**SMALL, "test": " the bird\n"})
    elif case == "missing":
        path = _folder(tmp_path, {k: v for k, v in SMALL.items() if k != "valid"})
    elif case == "corrupt":
        path = tmp_path / "ptb.tar.gz"
        path.write_bytes(b"\x1f\x8b not really gzip")
    elif case == "binary":
        path = _folder(tmp_path, SMALL)
        (path / "train.txt").write_bytes(b"\xff\xfe cat\n")
    else:
        path = tmp_path / "absent"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBChecksumWarning)
        with pytest.raises(DataError) as err:
            load_ptb(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_checksums_are_mikolovs_files():
    assert MD5 == {"train": "f26c4b92c5fdc7b3f8c7cdcb991d8420", "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
                   "test": "8b80168b89c18661a38ef683c0dc3721"}
    assert hashlib.md5(b"").hexdigest() not in MD5.values()


def test_image_code_refuses_ptb_with_a_clear_error():
    with pytest.raises(DataError, match="'ptb' is a text corpus, not images"):
        load_dataset("ptb", "anywhere")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "N", "<unk>"]), max_size=6), min_size=2, max_size=8))
def test_tokenize_numbers_words_by_first_appearance_in_train(lines):
    text = "".join(" " + " ".join(words) + " \n" for words in lines).encode()
    corpus = tokenize({"train": text, "valid": text, "test": text})
    flat = [w for words in lines for w in words + [EOS]]
    assert corpus.vocab == list(dict.fromkeys(flat))
    assert [corpus.vocab[i] for i in corpus.train.tolist()] == flat


# ---- batching ------------------------------------------------------------------------------------
def _reference_batchify(data, bsz):  # rnn/utils.py:15-22
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def _reference_get_batch(source, i, bptt, seq_len=None):  # rnn/utils.py:25-29
    seq_len = min(seq_len if seq_len else bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 300), st.integers(1, 12), st.integers(1, 40), st.data())
def test_batchify_and_get_batch_match_the_reference(n, batch, seq_len, data):
    tokens = torch.arange(n) * 7 % 101
    if n // batch < 2:
        with pytest.raises(ShapeError):
            batchify(tokens, batch)
        return
    source = batchify(tokens, batch)
    assert torch.equal(source, _reference_batchify(tokens, batch)) and source.shape == (n // batch, batch)
    i = data.draw(st.integers(0, len(source) - 2))
    x, y = get_batch(source, i, seq_len)
    rx, ry = _reference_get_batch(source, i, 35, seq_len)
    assert torch.equal(x, rx) and torch.equal(y, ry)
    assert torch.equal(x[1:], y[:-1])  # the target is the input one step ahead


def _reference_seq_len(bptt, rng):  # rnn/train.py:169-173, np.random replaced by a Generator
    bptt_ = bptt if rng.random() < 0.95 else bptt / 2.
    seq_len = max(5, int(rng.normal(bptt_, 5)))
    return min(seq_len, bptt + 20)


def test_bptt_length_is_the_references_draw_and_scales_the_learning_rate():
    mine, theirs = np.random.default_rng(3), np.random.default_rng(3)
    lengths = [bptt_length(35, mine) for _ in range(4000)]
    assert lengths == [_reference_seq_len(35, theirs) for _ in range(4000)]
    assert 5 <= min(lengths) and max(lengths) <= 55
    short = np.mean(np.array(lengths) < 26)  # the bptt/2 = 17.5 mode, 1.7 sigma below 26; the main mode 1.8 above
    assert 0.03 < short < 0.1
    assert lr_scale(70, 35) == 2.0 and lr_scale(35, 35) == 1.0
    assert min(bptt_length(5, np.random.default_rng(s)) for s in range(200)) == 5  # the floor

"""Bad data sources: every one ends in DataError (or ConfigError / UnknownNameError for a bad option or name),
never a hang, a traceback from PIL, tarfile or pickle, or a silently wrong dataset."""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_contract import assert_one_line_error
from conftest import SHARED_CIFAR10, needs_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_data import make_cifar10_python

from archsearch.data import cache, load_dataset
from archsearch.errors import ConfigError, DataError, UnknownNameError

HYPOTHESIS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_fresh = itertools.count()  # one folder per example: a reused path could meet its own cache entry


def image(size=(8, 8), mode="RGB", fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=None if mode in ("1", "P") else 100).save(buffer, format=fmt)
    return buffer.getvalue()


GOOD = {"train/a/1.png": image(), "train/b/1.png": image(), "test/a/1.png": image(), "test/b/1.png": image()}


def image_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG that declares width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def load(path, name="imagefolder", **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's palette-transparency note, a rebuilt cache entry
        return load_dataset(name, path, quiet=True, **options)


# -- what data_dir is ---------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_fifo_device_or_socket_is_refused_before_it_is_opened(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would wait for a writer forever
    with pytest.raises(DataError, match="is a FIFO"):
        load(tmp_path / "fifo", "cifar10")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(DataError, match="is a socket"):
            load(tmp_path / "sock")
    for device in ("/dev/null", "/dev/zero"):  # /dev/zero never ends
        if os.path.exists(device):
            with pytest.raises(DataError, match="is a device"):
                load(device, "cifar100")


def test_a_fifo_given_to_the_command_line_ends_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    result = subprocess.run(
        [sys.executable, "-m", "archsearch.cli", "proxies", "--proxies", "snip", "--archs", "1", "--data", "cifar10",
         "--data-dir", str(tmp_path / "fifo"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2 and result.stderr.startswith("archsearch: error: data_dir"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "FIFO" in result.stderr


@pytest.mark.parametrize("data_dir, fragment", [
    (None, "needs data_dir"), ("/nonexistent/cifar", "does not exist"), ("/tmp/" + "a" * 5000, "cannot be read"),
    (123, "must be a path"), ("", "empty"), (b"/tmp", "must be a path"),
])
def test_a_data_dir_that_names_nothing_usable(data_dir, fragment):
    with pytest.raises(DataError, match=fragment):
        load(data_dir, "cifar10")


@pytest.mark.parametrize("content", [b"", b"hello, not an archive\n", bytes(range(256)) * 40, b"\x1f\x8b" + b"\0" * 30])
def test_a_file_that_is_no_archive(tmp_path, content):
    (tmp_path / "data.tar.gz").write_bytes(content)
    with pytest.raises(DataError, match="not a readable folder or tar archive"):
        load(tmp_path / "data.tar.gz", "cifar10")


@settings(HYPOTHESIS, max_examples=40)
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4))
def test_a_truncated_or_damaged_archive_is_a_data_error(tmp_path, cut, flips):
    blob = bytearray((tmp_path / "good.tar.gz").read_bytes() if (tmp_path / "good.tar.gz").exists()
                     else tar_gz(tmp_path / "good.tar.gz", GOOD).read_bytes())
    for where, value in flips:
        blob[int(where * (len(blob) - 1))] = value
    path = tmp_path / f"bad{next(_fresh)}.tar.gz"
    path.write_bytes(bytes(blob[: max(1, int(cut * len(blob)))]))
    try:
        dataset = load(path)
    except (DataError, ConfigError):
        return
    assert dataset.train_x.shape[1:] == (3, 8, 8)  # what survived is a whole dataset


@needs_shared
def test_the_real_cifar10_archive_cut_short(tmp_path):
    with open(SHARED_CIFAR10, "rb") as handle:
        (tmp_path / "cut.tar.gz").write_bytes(handle.read(300_000))
    with pytest.raises(DataError, match="not a readable folder or tar archive"):
        load(tmp_path / "cut.tar.gz", "cifar10")


# -- what an image folder holds -----------------------------------------------------------------
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]


@st.composite
def damaged_image(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "truncated", "flipped", "other size", "other mode"]))
    valid = image(fmt=draw(st.sampled_from(FORMATS)))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "flipped":
        blob = bytearray(valid)
        for _ in range(draw(st.integers(1, 4))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
        return bytes(blob)
    if kind == "other size":
        return image(size=(draw(st.integers(1, 12)), draw(st.integers(1, 12))))
    return image(mode=draw(st.sampled_from(["1", "L", "LA", "P", "RGBA", "CMYK", "I", "F"])), fmt="TIFF")


@settings(HYPOTHESIS, max_examples=60)
@given(blob=damaged_image(), where=st.sampled_from(["train/a/1.png", "train/b/2.jpg", "test/b/1.png"]))
def test_a_damaged_image_is_a_data_error_naming_it(tmp_path, blob, where):
    root = image_folder(tmp_path / f"f{next(_fresh)}", {**GOOD, where: blob})
    try:
        dataset = load(root)
    except DataError as error:
        assert where in str(error) or "train/a/1.png" in str(error)  # the image at fault, or the one it differs from
        return
    assert dataset.train_x.shape[2:] == (8, 8) and dataset.in_channels in (1, 3)


@settings(HYPOTHESIS, max_examples=15)
@given(st.lists(st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "F", "I;16"]), min_size=4, max_size=4))
def test_images_of_mixed_modes_decode_to_one_mode(tmp_path, modes):
    files = {name: image(mode=mode, fmt="TIFF") for name, mode in zip(GOOD, modes)}
    dataset = load(image_folder(tmp_path / f"m{next(_fresh)}", files))
    assert dataset.in_channels in (1, 3) and len(dataset.train_y) == 2


def test_what_pil_logs_about_a_damaged_file_stays_off_stderr(tmp_path, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as outside pytest: no handler but the last resort
    entry = b"\x15\x01\x03\x00\x01\x00\x00\x00\x03\x00"  # SamplesPerPixel = 3
    tiff = image(fmt="TIFF")
    assert entry in tiff
    root = image_folder(tmp_path / "d", {**GOOD, "train/a/1.tif": tiff.replace(entry, entry[:-1] + b"\x5c")})
    assert_one_line_error(["proxies", "--proxies", "snip", "--archs", "1", "--data", "imagefolder", "--data-dir",
                           str(root), "--quiet", "--out", str(tmp_path / "out")], "train/a/1.tif")


@pytest.mark.parametrize("where", ["train/a/1.png", "test/b/1.png"])
@pytest.mark.parametrize("side", [20_000, 10_000])  # past PIL's error limit, and between its warning and error
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, where, side):
    with pytest.raises(DataError, match=f"{where} is too large to decode safely"):
        load(image_folder(tmp_path, {**GOOD, where: bomb_png(side, side)}))


@pytest.mark.parametrize("files, fragment", [
    ({"train/a/x.txt": b"1", "test/a/y.txt": b"2"}, "holds none of the expected files"),
    ({"train/a/1.png": image(), "test/b/1.png": image()}, "test classes b have no train"),
    ({"train/a/1.png": image(), "train/b/": b""}, "has no test/<class>/ images"),
    ({**GOOD, "train/a/1.png": b"GIF89a"}, "train/a/1.png is not an image"),
])
def test_a_folder_short_of_images(tmp_path, files, fragment):
    files = {name: data for name, data in files.items() if not name.endswith("/")}
    with pytest.raises(DataError, match=fragment):
        load(image_folder(tmp_path, files))


def test_a_folder_with_no_images_at_all(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="holds none of the expected files"):
        load(tmp_path)


def test_special_files_inside_a_folder_are_left_out(tmp_path):
    root = image_folder(tmp_path / "d", GOOD)
    os.mkfifo(root / "train" / "a" / "fifo.png")  # reading it would block
    (root / "train" / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    dataset = load(root)
    assert len(dataset.train_y) == 2 and dataset.classes == ["a", "b"]


def test_file_names_that_are_not_utf8(tmp_path):
    root = os.fsencode(tmp_path / "d")
    for name, data in GOOD.items():
        path = root + b"/" + name.encode().replace(b"/a/", b"/\xff\xfe/")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    first, again = load(os.fsdecode(root)), load(os.fsdecode(root))  # decoded, then from the cache
    assert first.classes == again.classes and len(first.classes) == 2


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_a_folder_that_cannot_be_listed(tmp_path):
    root = image_folder(tmp_path / "d", GOOD)
    (root / "train" / "b").chmod(0)
    try:
        with pytest.raises(DataError, match="cannot list"):
            load(root)
    finally:
        (root / "train" / "b").chmod(0o755)


# -- the cache ----------------------------------------------------------------------------------
FOREIGN = [
    b"not a torch file", b"",
    {"train_x": "x"}, [1, 2, 3],
    {"train_x": torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "train_y": torch.tensor([0, 5]), "test_x":
     torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "test_y": torch.tensor([0]), "classes": ["a", "b"],
     "mean": [0.5] * 3, "std": [0.2] * 3},  # a label past the classes
    {"train_x": torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "train_y": torch.tensor([0, 1]), "test_x":
     torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "test_y": torch.tensor([0]), "classes": ["a", "b"],
     "mean": [0.5], "std": [0.2]},  # statistics of one channel for three
]


@pytest.mark.parametrize("foreign", FOREIGN)
def test_a_corrupt_or_foreign_cache_entry_is_rebuilt(tmp_path, foreign):
    root = image_folder(tmp_path / "d", GOOD)
    expected = load(root, cache_dir=tmp_path / "cache")
    entry = cache.cache_file("imagefolder", root, {"channels": None}, tmp_path / "cache")
    assert entry.is_file()
    if isinstance(foreign, bytes):
        entry.write_bytes(foreign)
    else:
        torch.save(foreign, entry)
    with pytest.warns(UserWarning, match="rebuilt"):
        again = load_dataset("imagefolder", root, quiet=True, cache_dir=tmp_path / "cache")
    assert torch.equal(again.train_x, expected.train_x) and again.classes == expected.classes


def test_a_cache_folder_that_cannot_be_used_costs_a_warning_only(tmp_path):
    (tmp_path / "file").write_text("x")
    root = image_folder(tmp_path / "d", GOOD)
    with pytest.warns(UserWarning, match="could not write dataset cache"):
        assert len(load_dataset("imagefolder", root, quiet=True, cache_dir=tmp_path / "file").train_y) == 2
    with pytest.raises(ConfigError, match="cache_dir must be a path"):
        load_dataset("digits", cache_dir=3)


# -- names and options --------------------------------------------------------------------------
ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10),
                     st.binary(max_size=4), st.lists(st.integers(), max_size=2))


@settings(max_examples=60, deadline=None)
@given(ANYTHING)
def test_an_unknown_dataset_name(name):
    if name in ("digits", "synthetic", "cifar10", "cifar100", "imagefolder"):
        return
    with pytest.raises(UnknownNameError, match="unknown dataset"):
        load_dataset(name)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["limit_train", "limit_test", "limit_seed"]), ANYTHING)
def test_limits_of_any_type_or_range(key, value):
    try:
        dataset = load_dataset("digits", **{key: value})
    except ConfigError:
        assert value is not None or key == "limit_seed"
        return
    if value is not None:
        assert isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key == "limit_seed" else 1)
    if key != "limit_seed" and value is not None:
        assert len(dataset.train_y if key == "limit_train" else dataset.test_y) <= value


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["num_train", "num_test", "channels", "size", "num_classes", "seed"]),
       st.one_of(ANYTHING.filter(lambda v: not isinstance(v, int) or v < 100), st.integers(10**13, 10**20)))
def test_synthetic_options_of_any_type_or_range(key, value):
    try:
        dataset = load_dataset("synthetic", **{"num_train": 4, "num_test": 2, "size": 4, key: value})
    except ConfigError:
        return
    assert isinstance(value, int) and not isinstance(value, bool) and len(dataset.train_y) >= 1


@pytest.mark.parametrize("options, fragment", [
    ({"workers": 0}, "workers must be an integer >= 1"), ({"workers": "x"}, "workers must be an integer"),
    ({"channels": 2}, "channels must be 1, 3 or None"), ({"channels": True}, "channels must be 1, 3 or None"),
    ({"colour": 1}, "does not take colour"),
])
def test_imagefolder_options(tmp_path, options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load(image_folder(tmp_path, GOOD), **options)


# -- CIFAR's python batches ---------------------------------------------------------------------
@pytest.mark.parametrize("damage, fragment", [
    (lambda blob: {**blob, b"data": [["x"] * 3072]}, "not arrays of integers"),
    (lambda blob: {**blob, b"data": np.full((10, 3072), 300)}, "not arrays of integers"),
    (lambda blob: {**blob, b"labels": [-1] * 10}, "negative labels"),
    (lambda blob: {**blob, b"labels": [[0, 1]] * 10}, "expected (N, 3072) and N"),
    (lambda blob: "a string", "expected a dict"),
])
def test_a_damaged_cifar_batch(tmp_path, damage, fragment):
    import pickle

    make_cifar10_python(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps(damage(pickle.loads(batch.read_bytes(), encoding="bytes")), protocol=2))
    with pytest.raises(DataError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load(tmp_path, "cifar10")


def test_cifar_meta_without_a_list_of_names(tmp_path):
    import pickle

    make_cifar10_python(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps({b"label_names": 10}))
    with pytest.raises(DataError, match="class names, expected a list"):
        load(tmp_path, "cifar10")
    shutil.rmtree(tmp_path / "cifar-10-batches-py")

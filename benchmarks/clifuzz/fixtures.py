"""Files the cases read: made once per attack (data folders, archives, tiny real runs) or per case in the
case's own folder (FIFOs, device nodes, damaged copies of runs), and what each data source must do.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .oracle import EITHER, INVALID, OK, Verdict

ROOT = Path(__file__).resolve().parents[2]
#: the development data (../shared/data from the checkout; a worktree lies one folder deeper), if any
SHARED = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
              ROOT.parent / "shared" / "data")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@dataclass
class Env:
    """What the attack knows about this machine and where its fixtures lie."""

    root: Path
    cuda_devices: int = 0
    mps: bool = False
    is_root: bool = False
    can_mknod: bool = False
    shared_cifar: Path | None = None
    shared_ptb: Path | None = None
    runs: dict[str, Path] = field(default_factory=dict)

    @property
    def fix(self) -> Path:
        return self.root / "fixtures"

    def source(self, name: str) -> Path:
        return self.fix / name


# -- data sources: name -> (what it holds, verdict per dataset) ----------------------------------
def _png(width: int, height: int, channels: int, rng: random.Random) -> bytes:
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    image = Image.frombytes(mode, (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * channels)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _image_folder(path: Path, classes, train: int, test: int, size=32, channels=3, seed=0, sizes=None,
                  prefix="") -> None:
    rng = random.Random(seed)
    for split, count in (("train", train), ("test", test)):
        for c in classes:
            folder = path / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                side = rng.choice(sizes) if sizes else size
                (folder / f"{prefix}{i:04d}.png").write_bytes(_png(side, side, channels, rng))


def _tar(source: Path, target: Path) -> None:
    with tarfile.open(target, "w:gz") as archive:
        for item in sorted(source.iterdir()):
            archive.add(item, arcname=item.name)


def _bomb_png() -> bytes:
    """A PNG whose header claims 60,000 x 60,000 pixels: decoders must refuse it, not allocate it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _bad_folder(path: Path, content: bytes, name="0000.png") -> None:
    for split in ("train", "test"):
        for c in CLASSES[:2]:
            (path / split / c).mkdir(parents=True, exist_ok=True)
            (path / split / c / name).write_bytes(content)


def _cut(source: Path | None, target: Path, fraction: float, fallback: Path) -> None:
    data = (source or fallback).read_bytes()
    target.write_bytes(data[: max(1, int(len(data) * fraction))])


def make_data_sources(env: Env) -> None:
    fix = env.fix
    _image_folder(fix / "mini10", CLASSES, 6, 3)
    _tar(fix / "mini10", fix / "mini10.tar.gz")
    _image_folder(fix / "mini100", [f"class{i:03d}" for i in range(100)], 2, 1, seed=1)
    _image_folder(fix / "grey8", CLASSES, 6, 3, size=8, channels=1, seed=2)
    _image_folder(fix / "mixed-sizes", CLASSES[:3], 4, 2, sizes=(8, 16), seed=3)
    grey_rgb = fix / "grey-rgb"
    _image_folder(grey_rgb, CLASSES[:2], 3, 2, seed=4)
    _image_folder(grey_rgb, CLASSES[:2], 3, 2, channels=1, seed=5, prefix="grey")
    _image_folder(fix / "notest" / "x", CLASSES[:2], 2, 0, seed=6)
    shutil.rmtree(fix / "notest" / "x" / "test", ignore_errors=True)
    _image_folder(fix / "two-folders" / "a", CLASSES[:2], 2, 1, seed=7)
    _image_folder(fix / "two-folders" / "b", CLASSES[:2], 2, 1, seed=8)
    _bad_folder(fix / "not-images", b"this is no image\n")
    _bad_folder(fix / "bomb", _bomb_png())
    _bad_folder(fix / "truncated-png", _png(32, 32, 3, random.Random(9))[:60])
    _bad_folder(fix / "no-images", b"notes\n", name="readme.txt")
    (fix / "empty-dir").mkdir()
    (fix / "empty.tar.gz").write_bytes(b"")
    (fix / "text.tar.gz").write_text("hello, I am not an archive\n")
    (fix / "garbage.bin").write_bytes(random.Random(10).randbytes(4096))
    with zipfile.ZipFile(fix / "zip.tar.gz", "w") as archive:
        archive.writestr("train/airplane/0.png", _png(32, 32, 3, random.Random(11)))
    with tarfile.open(fix / "traversal.tar.gz", "w:gz") as archive:
        for split in ("train", "test"):
            for c in CLASSES:
                data = _png(32, 32, 3, random.Random(f"{split}/{c}"))
                info = tarfile.TarInfo(f"../{split}/{c}/0.png")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    for fraction in (0.0001, 0.01, 0.3, 0.9):
        _cut(env.shared_cifar, fix / f"cut-{fraction:g}.tar.gz", fraction, fix / "mini10.tar.gz")


#: data source -> verdict for each on-disk dataset. ``shared-cifar`` is the development CIFAR-10 tarball
DATA_SOURCES: dict[str, dict[str, Verdict]] = {
    "mini10": {"cifar10": OK, "imagefolder": OK},
    "mini10.tar.gz": {"cifar10": OK, "imagefolder": OK},
    "mini100": {"cifar100": OK, "imagefolder": OK},
    "shared-cifar": {"cifar10": OK, "imagefolder": OK},
    "grey8": {"cifar10": Verdict(EITHER, "8x8 grey images as CIFAR-10"), "imagefolder": OK},
    "grey-rgb": {"imagefolder": Verdict(EITHER, "grey and colour images mixed")},
    "traversal.tar.gz": {"cifar10": Verdict(EITHER, "member names with ../"),
                         "imagefolder": Verdict(EITHER, "member names with ../")},
    "mixed-sizes": {}, "notest": {}, "two-folders": {}, "not-images": {}, "bomb": {}, "truncated-png": {},
    "no-images": {}, "empty-dir": {}, "empty.tar.gz": {}, "text.tar.gz": {}, "garbage.bin": {}, "zip.tar.gz": {},
    "cut-0.0001.tar.gz": {}, "cut-0.01.tar.gz": {}, "cut-0.3.tar.gz": {}, "cut-0.9.tar.gz": {}, "shared-ptb": {},
    # made in the case folder
    "missing": {}, "fifo": {}, "chardev": {}, "symlink-loop": {}, "unreadable": {},
}
#: sources that hold a whole dataset: fine for a limited search or training, too slow to decode in full
LARGE_SOURCES = ("shared-cifar",)


def source_verdict(name: str, dataset: str) -> Verdict:
    verdict = DATA_SOURCES[name].get(dataset)
    if verdict is None:
        wanted = {"cifar100": "cifar100 needs 100 classes"}.get(dataset, "no usable images")
        return Verdict(INVALID, f"data folder {name}: {wanted}")
    return verdict


# -- per-case files: operations run in the case folder before the command ---------------------------
def apply(op: tuple, case_dir: Path, env: Env) -> None:
    """One file operation; paths are relative to the case folder, sources name shared fixtures."""
    kind, path, *args = op
    target = case_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "write":
        target.write_bytes(args[0] if isinstance(args[0], bytes) else args[0].encode("utf-8", "surrogateescape"))
    elif kind == "mkdir":
        target.mkdir(parents=True, exist_ok=True)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "chardev":  # a stand-in for /dev/null, made here so the real one is never at risk
        os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "symlink":
        os.symlink(args[0], target)
    elif kind == "copy":
        source = _source_path(args[0], env)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
    elif kind == "remove":
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    elif kind == "truncate":
        data = target.read_bytes()
        target.write_bytes(data[: int(len(data) * args[0])])
    elif kind == "chmod":
        os.chmod(target, args[0])
    elif kind == "share":  # a run folder its owner opened to the group: files 0644, folders 0755
        for path in [target, *target.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
    elif kind == "yaml_set":  # edit one key of a run's config.yaml
        data = yaml.safe_load(target.read_text())
        data[args[0]] = args[1]
        target.write_text(yaml.safe_dump(data, sort_keys=False))
    elif kind == "append":
        with open(target, "ab") as handle:
            handle.write(args[0])
    else:
        raise ValueError(f"unknown file operation {kind}")


def _source_path(name: str, env: Env) -> Path:
    if name.startswith("run:"):  # run:NAME or run:NAME/file
        run, _, inside = name[4:].partition("/")
        return env.runs[run] / inside if inside else env.runs[run]
    if name == "shared-cifar":
        return env.shared_cifar
    if name == "shared-ptb":
        return env.shared_ptb
    return env.source(name)


def data_dir_ops(name: str, env: Env) -> tuple[str, list[tuple], bool]:
    """(the --data-dir argument, files to make in the case folder, whether the case must run unprivileged)."""
    if name == "missing":
        return "no/such/folder", [], False
    if name == "fifo":
        return "data.fifo", [("fifo", "data.fifo")], False
    if name == "chardev":
        return "null.dev", [("chardev", "null.dev")], False
    if name == "symlink-loop":
        return "loop", [("symlink", "loop", "loop")], False
    if name == "unreadable":
        return "locked", [("copy", "locked", "mini10"), ("chmod", "locked", 0o000)], env.is_root
    return str(_source_path(name, env)), [], False

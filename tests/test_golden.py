"""Behaviour pinned: deterministic searches' metrics.jsonl and genotype.json, and a bench run's summary.json,
equal the files recorded in tests/golden/ (the oracle is the code's own earlier output; a refactor that
changes a number, an order or a key fails here).

Float results depend on the kernels a CPU runs (oneDNN and ATen pick them by ISA), so every run is made on
the AVX2 kernels, one thread, with MKL's reproducible AVX2 path. That still leaves the last float32 bits to
the CPU model: oneDNN sizes its blocking by the caches, so an AMD EPYC and an Intel Xeon, both on AVX2,
differ by about 1e-7 in a loss (and, through rounding to six digits, by 1e-6 in a logged op weight).
Hence: every key, order, string, integer and genotype must be identical, and every float equal within
``FLOAT_TOLERANCE`` of its scale (relative above 1, absolute below). A changed default moves numbers far more.
The one field that is not behaviour, an epoch's wall-clock ``seconds``, is dropped before comparing.

Record again (only when a change of behaviour is intended, and say so in the commit):

    .venv/bin/python tests/test_golden.py --record
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
TINY = ["--data", "digits", "epochs=2", "C=4", "N=1", "limit_train=128", "batch_size=32", "hessian_every=0"]
DARTS_TINY = ["--space", "darts", "--data", "digits", "epochs=2", "C=4", "layers=2", "limit_train=128",
              "batch_size=32", "hessian_every=0", "arch_warmup_epochs=1"]

#: one run per kind of part: each relaxation, architecture optimizer, selector, hook and driver is in one
SEARCHES = {
    "darts": ["--method", "darts", *TINY],
    "darts2": ["--method", "darts2", *TINY],
    "balenas": ["--method", "balenas", *TINY],
    "balenas-tf": ["--method", "balenas-tf", *TINY, "selector_options={proxy: synflow, n: 4}"],
    "xnas": ["--method", "xnas", *TINY],
    "fairdarts-dscd": ["--method", "fairdarts-dscd", *TINY],
    # the supernet with its `none` column, as before FairDARTS left it out: the earlier fairdarts-dscd output
    "fairdarts-dscd-none": ["--method", "fairdarts-dscd", *TINY, "supernet_options={exclude_ops: []}"],
    "gdas": ["--method", "gdas", *TINY],
    "snas": ["--method", "snas", *TINY],
    "drnas": ["--method", "drnas", *TINY],
    "dartsplus": ["--method", "dartsplus", *TINY[:2], "epochs=3", *TINY[3:]],
    "pcdarts-darts": ["--method", "pcdarts", *DARTS_TINY],
    "pdarts-darts": ["--method", "pdarts", *DARTS_TINY,
                     "driver_options={add_layers: [0, 1], num_ops: [8, 4], skip_dropout: [0.0, 0.4], dropout_decay: 0.2}"],
    "rdarts-dp-darts": ["--method", "rdarts-dp", *DARTS_TINY],
}
BENCH = ["bench", "--strategies", "random,evolution,reinforce,local,tpe,bo", "--queries", "12", "--seeds", "2",
         "--quiet"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2", MKL_CBWR="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    return env


#: runs every command in one interpreter, one after another, each in its own folder: besides saving the
#: start-up of each, this shows that a run leaves no global state (deterministic kernels, seeds, threads)
#: that changes the next one, since the recording was made one process per run
DRIVER = """
import json, os, sys
from archsearch.cli import main
for folder, argv in json.loads(sys.argv[1]):
    os.chdir(folder)
    if main(argv) != 0:
        sys.exit(f"archsearch {' '.join(argv)} failed")
"""


def _archsearch(runs: list[tuple[Path, list[str]]]) -> None:
    work = [(str(folder), args) for folder, args in runs]
    for folder, _ in work:
        Path(folder).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(work)], env=_environment(),
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]


#: how far a float may move between CPU models (see the module's docstring): 2e-6 of max(1, |a|, |b|)
FLOAT_TOLERANCE = 2e-6


def _differences(now, recorded, where: str = "") -> list[str]:
    """Where two parsed JSON values differ beyond FLOAT_TOLERANCE (bools and ints compared exactly)."""
    if isinstance(now, float) or isinstance(recorded, float):
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (now, recorded))
        if numbers and (now == recorded or (math.isnan(now) and math.isnan(recorded))
                        or abs(now - recorded) <= FLOAT_TOLERANCE * max(1.0, abs(now), abs(recorded))):
            return []
        return [f"{where}: {now!r} != {recorded!r}"]
    if isinstance(now, dict) and isinstance(recorded, dict):
        if list(now) != list(recorded):
            return [f"{where}: keys {list(now)} != {list(recorded)}"]
        return [d for key in now for d in _differences(now[key], recorded[key], f"{where}.{key}")]
    if isinstance(now, list) and isinstance(recorded, list):
        if len(now) != len(recorded):
            return [f"{where}: {len(now)} items != {len(recorded)}"]
        return [d for i, (a, b) in enumerate(zip(now, recorded)) for d in _differences(a, b, f"{where}[{i}]")]
    return [] if type(now) is type(recorded) and now == recorded else [f"{where}: {now!r} != {recorded!r}"]


def _parsed(file: str, text: str):
    return [json.loads(line) for line in text.splitlines()] if file.endswith(".jsonl") else json.loads(text)


def _without_wall_time(text: str) -> str:
    return re.sub(r', "seconds": [0-9.e+-]+', "", text)


def _search_argv(name: str) -> list[str]:
    return ["search", "--quiet", "--deterministic", "--seed", "3", "--out", name, *SEARCHES[name]]


def _search_outputs(name: str, workdir: Path) -> dict[str, str]:
    run, outputs = workdir / name, {}
    for path in sorted(run.rglob("*")):  # a driver's stages keep theirs in stage folders
        if path.name in ("metrics.jsonl", "genotype.json", "stages.json"):
            key = ".".join((name, *path.relative_to(run).parts))
            outputs[key] = _without_wall_time(path.read_text())
    assert f"{name}.genotype.json" in outputs, sorted(outputs)
    return outputs


def all_outputs(workdir: Path, separately: bool = False) -> dict[str, str]:
    """Every search and the bench run; ``separately``: one process per run (how the recording is made)."""
    runs = [(workdir, [*BENCH, "--out", "bench"])] + [(workdir, _search_argv(name)) for name in SEARCHES]
    for batch in ([run] for run in runs) if separately else [runs]:
        _archsearch(batch)
    outputs = {"bench.summary.json": (workdir / "bench" / "summary.json").read_text()}
    for name in SEARCHES:
        outputs.update(_search_outputs(name, workdir))
    return outputs


def _on_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return " avx2 " in f" {Path('/proc/cpuinfo').read_text().replace(chr(10), ' ')} "
    except OSError:
        return True  # not Linux: the x86-64 machines we meet all have AVX2


needs_avx2 = pytest.mark.skipif(not _on_avx2(), reason="the recorded bits are those of x86-64 AVX2 kernels")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return all_outputs(tmp_path_factory.mktemp("golden"))


@needs_avx2
@pytest.mark.parametrize("file", sorted(p.name for p in GOLDEN.iterdir() if p.is_file()))
def test_outputs_match_the_recording(file, outputs):
    assert file in outputs, f"tests/golden/{file} was recorded, but no run wrote it now"
    differences = _differences(_parsed(file, outputs[file]), _parsed(file, (GOLDEN / file).read_text()))
    assert not differences, f"{file} differs from tests/golden/{file}: " + "; ".join(differences[:5])


@needs_avx2
def test_every_output_has_a_recording(outputs):
    assert sorted(outputs) == sorted(p.name for p in GOLDEN.iterdir() if p.is_file())


def test_the_comparison_allows_cpu_noise_and_nothing_more():
    recorded = {"loss": 2.19549822807312, "ops": [0.230556, 0.0], "epoch": 1, "genotype": "|skip~0|"}
    assert not _differences({**recorded, "loss": 2.1954983472824097, "ops": [0.230557, 0.0]}, recorded)
    assert _differences({**recorded, "loss": 2.19551}, recorded)  # a change of behaviour: 5e-6 of the loss
    assert _differences({**recorded, "epoch": 2}, recorded)
    assert _differences({**recorded, "epoch": True}, {**recorded, "epoch": 1})
    assert _differences({**recorded, "genotype": "|none~0|"}, recorded)
    assert _differences(dict(reversed(list(recorded.items()))), recorded)
    assert _differences({**recorded, "ops": [0.230556]}, recorded)
    assert not _differences({"loss": math.nan}, {"loss": math.nan})  # an epoch without validation batches
    assert _differences({"loss": math.nan}, {"loss": 2.0})


def record() -> None:
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        outputs = all_outputs(Path(scratch), separately=True)
    for file, text in outputs.items():
        (GOLDEN / file).write_text(text)
        print(f"recorded tests/golden/{file}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    record()

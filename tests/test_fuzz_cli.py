"""The command line under generated attack: a bounded, seeded sample of benchmarks/fuzz_cli.py.

The harness (its generators, independent oracle and classifier live in benchmarks/clifuzz/) runs a few hundred
cases of bad input through every command; the test asserts that each ended with one 'archsearch: error:' line
and exit code 2: no traceback, crash, hang, silently accepted value or damaged file. The full attack is the
benchmark (``python benchmarks/fuzz_cli.py --cases 10000 --show 3``).

Run alone:  python -m pytest tests/test_fuzz_cli.py -m fuzz -q
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "fuzz_cli.py"
pytestmark = pytest.mark.fuzz


def _load_harness():
    """The harness module by path (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("fuzz_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_oracle_reads_values_as_documented():
    _load_harness()
    from clifuzz.oracle import EITHER, INVALID, VALID, Device, Given, judge_recipe, judge_search

    device = Device(cuda_devices=0, mps=False)

    def label(method=None, **texts):
        return judge_search({k: Given.from_text(v) for k, v in texts.items()}, method, device).label

    assert label("darts", epochs="1", C="2") == VALID
    assert label("darts", C="0") == INVALID and label("darts", epochs="0") == INVALID
    assert label("darts", w_lr="nan") == INVALID and label("darts", w_lr="1e309") == INVALID
    assert label("darts", order="3") == INVALID and label("darts", deterministic="1") == INVALID
    assert label("darts", space="darts", C="3") == INVALID  # DARTS cells halve C in their reductions
    assert label("darts", relaxation_options="{tau_max: 1}") == INVALID  # softmax takes no options
    assert label("gdas", relaxation_options="{tau_max: 5, tau_min: 0.5}") == VALID
    assert label("darts", device="cuda") == INVALID and label("darts", device="cpu") == VALID
    assert label("darts", w_lr="1e-3") == EITHER  # PyYAML reads 1e-3 as text: a number either way
    assert label("nosuchmethod") == INVALID and label("darts", epoch="3") == INVALID
    assert judge_recipe({"lr": Given.from_text("-0.1")}, "nb201").label == INVALID
    assert judge_recipe({"network": Given.from_text("{layers: 3}")}, "nb201").label == INVALID


def test_generated_bad_input_ends_with_one_clean_error(tmp_path):
    """~150 seeded cases of bad input; the harness runs in a fresh interpreter because it forks a child per
    case, which is unsafe from a process that has already run torch compute (as the rest of the suite has)."""
    out = tmp_path / "fuzz.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(SCRIPT), "--cases", "150", "--seed", "2024", "--only-invalid",
                          "--timeout", "20", "--quiet", "--json", str(out)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads(out.read_text())["results"]
    defects = [r for r in results if r["defects"]]
    lines = [f"{kind}: archsearch {' '.join(r['case']['argv'])[:200]}\n    {detail[:200]}"
             for r in defects for kind, detail in r["defects"]]
    if defects:
        pytest.fail(f"{len(defects)} of {len(results)} cases broke the promise:\n" + "\n".join(lines[:40]),
                    pytrace=False)

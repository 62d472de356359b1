"""The worked examples of docs/architecture.md (adding a method, a selector, a strategy and a space) run as
written: each block is a whole program, run in a fresh interpreter in an empty folder, and asserts what it
shows. A change of interface that breaks an example fails here, not in a reader's hands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"


def examples() -> dict[str, str]:
    text = PAGE.read_text()
    section = text[text.index("## Worked examples"):]
    found = {}
    for title, body in re.findall(r"### (.+?)\n.*?```python\n(.*?)```", section, re.S):
        found[title.split(":")[0].strip()] = body
    return found


def test_the_page_shows_the_four_examples():
    assert list(examples()) == ["A method", "A selector", "A strategy", "A space"]


@pytest.mark.parametrize("title", list(examples()))
def test_example_runs(title, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", examples()[title]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

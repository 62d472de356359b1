"""The import layering of docs/architecture.md, checked on the source: every import (also those inside
functions, where cycles like to hide) points to a lower layer, and no module imports itself round a cycle.

The oracle is the layer table of docs/architecture.md, read from the page; the test reads every module of
src/archsearch with ``ast`` and needs nothing imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "archsearch"

PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _layers_of_the_page() -> dict[str, int]:
    """The table of docs/architecture.md's "What may import what": its rows ``| n | `a/`, `b.py` | ... |``."""
    text = PAGE.read_text()
    section = text[text.index("## What may import what"):]
    section = section[: section.index("\n## ", 1)]
    ranks = {}
    for number, names in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.M):
        for name in re.findall(r"`([^`]+)`", names):
            ranks[name.rstrip("/").removesuffix(".py")] = int(number)
    return ranks


RANK = _layers_of_the_page()
LONG_MODULE = 400  # lines; a longer module says why in a comment that starts with "# longer than"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every archsearch module ``path`` imports, resolved to absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found |= {f"{stem}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {name for name in found if name == "archsearch" or name.startswith("archsearch.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported not in modules and "." in imported:  # `from pkg import name`: name is no module
                imported = imported.rpartition(".")[0]
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer():
    parts = {_part(m) for m in _graph()}
    assert parts <= set(RANK), f"not in the layering table: {sorted(parts - set(RANK))}"


def test_imports_point_downwards():
    upward = []
    for module, targets in _graph().items():
        for target in targets:
            here, there = _part(module), _part(target)
            if here != there and RANK.get(there, -1) >= RANK.get(here, -1):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not point to a lower layer:\n" + "\n".join(sorted(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_no_import_cycles():
    # A package's __init__ imports its members to register and re-export them (its table of contents); a
    # member taking a name from its own package's __init__ is left out, so that pattern is no cycle.
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in _graph().items()}
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_the_page_states_the_layers():
    assert RANK["errors"] == 0 and RANK["spaces"] < RANK["relax"] < RANK["search"] < RANK["cli"] < RANK["__main__"]


def test_the_checker_finds_an_upward_import_and_a_cycle():
    graph = {"archsearch.spaces.a": {"archsearch.search.b"}, "archsearch.search.b": {"archsearch.spaces.a"}}
    assert _cycles(graph) == [["archsearch.search.b", "archsearch.spaces.a"]]
    assert RANK["spaces"] < RANK["search"]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_are_short_or_say_why(path):
    lines = path.read_text().splitlines()
    if len(lines) > LONG_MODULE:
        assert any(line.lstrip().startswith("# longer than") for line in lines), (
            f"{path.relative_to(SRC)} has {len(lines)} lines: split it, or say in a '# longer than ...' comment why not")

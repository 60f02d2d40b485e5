"""No import cycle between files of procs/, shm/, tui/ and strategies/.

Every import counts: module level, inside a function, under ``TYPE_CHECKING``, relative ones
resolved against their package. ``from pkg import name`` counts as importing the submodule
``pkg/name.py`` when there is one, else ``pkg/__init__.py``; importing a package counts as
importing its ``__init__.py``. The parent packages a module sits in are not counted as its
imports (every module implicitly needs them; counting that would make every re-exporting
``__init__`` a cycle by construction). Imports of anything outside the tree are ignored.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("procs", "shm", "tui", "strategies")

# Cycles being removed elsewhere, each a set of files (a strongly connected component). The test
# fails on every cycle not listed here and on every entry here that no longer exists, so an entry
# is deleted in the commit that breaks its cycle.
KNOWN_CYCLES: list[frozenset[str]] = []


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _package_of(module: str, path: Path) -> str:
    """The package a relative import in ``module`` is resolved against."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_modules(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The in-tree modules ``module`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        """The longest in-tree module ``name`` starts with (``a.b.attr`` -> ``a.b``)."""
        while name:
            if name in known:
                return name
            name = name.rpartition(".")[0]
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                target = submodule if submodule in known else resolve(source)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """File (relative to the checkout) -> the files it imports."""
    known = module_files()
    rel = {m: str(p.relative_to(ROOT)) for m, p in known.items()}
    return {rel[m]: {rel[t] for t in imported_modules(m, p, known)} for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one file (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def describe(component: frozenset[str], graph: dict[str, set[str]]) -> str:
    """One cycle's files and the imports between them."""
    edges = [f"    {a} -> {b}" for a in sorted(component) for b in sorted(graph[a] & component)]
    return "\n".join([f"  cycle of {len(component)} files:", *edges])


def test_cycles_finds_a_cycle_and_ignores_a_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imported_modules_counts_deferred_type_checking_and_relative_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from .pkg import name_in_init\n"
        "if TYPE_CHECKING:\n"
        "    from .typed import T\n"
        "def later():\n"
        "    import procs.deferred.thing\n"
        "import numpy\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    known = {m: tmp_path / "x.py" for m in
             ("procs.a.mod", "procs.a.sibling", "procs.a.pkg", "procs.a.typed", "procs.deferred")}
    got = imported_modules("procs.a.mod", path, known)
    assert got == {"procs.a.sibling", "procs.a.pkg", "procs.a.typed", "procs.deferred"}


def test_no_import_cycle_between_files() -> None:
    graph = import_graph()
    assert "procs/strategy/api.py" in graph and "shm/ring.py" in graph  # the walk saw the tree
    found = cycles(graph)
    new = [c for c in found if c not in KNOWN_CYCLES]
    gone = [c for c in KNOWN_CYCLES if c not in found]
    message = []
    if new:
        message.append("import cycles between files (break them; deferred imports still count):")
        message += [describe(c, graph) for c in new]
    if gone:
        message.append("KNOWN_CYCLES lists cycles that no longer exist (delete the entries):")
        message += [f"  {sorted(c)}" for c in gone]
    assert not message, "\n".join(message)

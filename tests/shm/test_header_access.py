"""Only shm/ touches a segment's header words (shm/sequence.py's claim): no module of procs/,
tui/ or strategies/ reads ``Segment.words`` or indexes it with shm.layout's word constants
(``W_*``, ``C_*``, ``consumer_word``). Cursors, sequences and liveness stamps are reached through
shm's Producer/Consumer, StateReader/StateWriter and RingHeader."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER_NAME = re.compile(r"^(W_|C_)[A-Z_]+$|^consumer_word$")


def header_accesses(path: Path) -> list[str]:
    """``line: what`` for each header-word access in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    layout_aliases = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "shm" and node.level == 0:
            layout_aliases |= {a.asname or a.name for a in node.names if a.name == "layout"}
        elif isinstance(node, ast.Import):
            layout_aliases |= {a.asname for a in node.names if a.name == "shm.layout" and a.asname}
        if isinstance(node, ast.ImportFrom) and node.module == "shm.layout":
            found += [f"{node.lineno}: imports {a.name}" for a in node.names if HEADER_NAME.match(a.name)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr == "words":
                found.append(f"{node.lineno}: .words")
            elif (HEADER_NAME.match(node.attr) and isinstance(node.value, ast.Name)
                  and node.value.id in layout_aliases):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_header_accesses_finds_words_and_layout_indexes(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from shm import layout as L\nfrom shm.layout import W_SEQLOCK, KIND_RING\n"
                    "x = seg.words[L.W_WRITE_CURSOR]\ny = L.KIND_RING\n")
    assert sorted(header_accesses(path)) == ["2: imports W_SEQLOCK", "3: .words", "3: L.W_WRITE_CURSOR"]


def test_no_module_outside_shm_touches_header_words() -> None:
    offenders = {}
    for package in ("procs", "tui", "strategies"):
        for path in sorted((ROOT / package).rglob("*.py")):
            got = header_accesses(path)
            if got:
                offenders[str(path.relative_to(ROOT))] = got
    assert not offenders, f"header words touched outside shm/ (use shm's readers): {offenders}"

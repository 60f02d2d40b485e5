"""The documentation rules: README.md is a manual (at most 300 lines, no dates), and every
decision record a file names exists."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

README_MAX_LINES = 300
DATE = re.compile(r"20\d\d-\d\d-\d\d")
RECORD = re.compile(r"(?:decisions/|\]\()(\d{3}-[a-z0-9-]+\.md)")
# where code, config and docs may name a decision record
NAMED_IN = ("README.md", "CHANGELOG.md", "b25.toml", "b25.testnet.toml", "supervisord.conf", "docs",
            "procs", "shm", "strategies", "tui", "scripts")


def test_readme_is_at_most_300_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move figures to docs/benchmarks.md, "
        "reasons to docs/decisions/, history to CHANGELOG.md")


def test_readme_has_no_dates() -> None:
    dated = [f"{n}: {line.strip()}" for n, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1)
             if DATE.search(line)]
    assert dated == [], "README.md holds no dated history (it goes in CHANGELOG.md):\n" + "\n".join(dated)


def _files_naming_records() -> list[Path]:
    files: list[Path] = []
    for name in NAMED_IN:
        p = ROOT / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file() and f.suffix in (".py", ".md", ".toml", ".conf")]
    return files


def test_every_named_decision_record_exists() -> None:
    records = ROOT / "docs" / "decisions"
    named = {(f.relative_to(ROOT), m) for f in _files_naming_records() for m in RECORD.findall(f.read_text())}
    assert named, "nothing names a decision record: the pattern or NAMED_IN is wrong"
    missing = sorted(f"{f}: decisions/{m}" for f, m in named if not (records / m).is_file())
    assert missing == [], "named decision records that do not exist:\n" + "\n".join(missing)


def test_decision_records_are_numbered_once() -> None:
    numbers = [p.name[:3] for p in (ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9]-*.md")]
    assert numbers, "no decision records in docs/decisions/"
    assert len(numbers) == len(set(numbers)), f"a number is used twice: {sorted(numbers)}"

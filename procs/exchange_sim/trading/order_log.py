"""The venue's order log: every order, trade and algo record, oldest first (``GET /sim/order_log``).

With a file (``[sim_trading] order_log``) the records live in the file only: an append writes one
flushed JSON line (it survives a SIGKILL of the simulator) and memory keeps a count and the byte
offset of every ``CHECKPOINT_EVERY``-th record, so a simulator that trades for a day stays the
size it was after warm-up. Reading parses the file from the point this venue's log began (the
file's end when it was opened, or its start after a restore, procs/exchange_sim/trading/restore.py),
skipping the ``SESSION`` lines and lines that are not JSON objects (a torn line after a crash) as a
restore does. Without a file (in-process tests, backtests) the records are kept in a list.

Reads compare, slice, index and iterate like the list the log used to be.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, overload

CHECKPOINT_EVERY = 4096  # records between two remembered byte offsets: a read skips to the nearest


def parse_record(line: bytes | str) -> dict[str, Any] | None:
    """The order record of one log line; None for a SESSION line or a line that is not a JSON object."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict) or rec.get("event") == "SESSION":
        return None
    return rec


class OrderLog:
    """Append-only order records, in a file when ``path`` is set, else in memory."""

    def __init__(self, path: str = "") -> None:
        self.path = path
        self._records: list[dict[str, Any]] | None = None if path else []
        self._file = None
        self._count = 0
        self._begin = 0  # byte offset of this log's first record in the file
        self._checkpoints: list[int] = []  # byte offset of record i * CHECKPOINT_EVERY
        self._size = 0  # bytes in the file (the offset of the next line)
        if path:
            self._file = open(path, "ab")
            self._size = self._begin = self._file.seek(0, os.SEEK_END)
            if self._size and self._last_byte() != b"\n":
                # a torn last line (a SIGKILL mid-write) must not swallow the next record
                self.write_raw("\n")
                self._begin = self._size

    def _last_byte(self) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1)

    # -- writing ---------------------------------------------------------------------------
    def append(self, rec: dict[str, Any]) -> None:
        if self._records is not None:
            self._records.append(rec)
            return
        if self._count % CHECKPOINT_EVERY == 0:
            self._checkpoints.append(self._size)
        self._count += 1
        self.write_line(rec)

    def write_line(self, rec: dict[str, Any]) -> None:
        """One line to the file only, not an order record (the SESSION line); nothing without a file."""
        self.write_raw(json.dumps(rec) + "\n")

    def write_raw(self, text: str) -> None:
        if self._file is not None:
            data = text.encode()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)

    def include_file(self) -> int:
        """Begin the log at the file's start, its existing records included (a restore has read
        them back); returns how many there are."""
        if self._records is not None:
            return 0
        self._begin, self._count, self._checkpoints = 0, 0, []
        offset = 0
        with open(self.path, "rb") as f:
            for line in f:
                if offset >= self._size:
                    break
                if parse_record(line) is not None:
                    if self._count % CHECKPOINT_EVERY == 0:
                        self._checkpoints.append(offset)
                    self._count += 1
                offset += len(line)
        return self._count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- reading ---------------------------------------------------------------------------
    def records(self, start: int = 0) -> list[dict[str, Any]]:
        """Records ``start`` onwards (``GET /sim/order_log?from=N``)."""
        start = max(start, 0)
        if self._records is not None:
            return self._records[start:]
        if start >= self._count:
            return []
        checkpoint = start // CHECKPOINT_EVERY
        index = checkpoint * CHECKPOINT_EVERY
        out: list[dict[str, Any]] = []
        with open(self.path, "rb") as f:
            f.seek(self._checkpoints[checkpoint])
            for line in f:
                rec = parse_record(line)
                if rec is None:
                    continue
                if index >= start:
                    out.append(rec)
                index += 1
                if index >= self._count:
                    break
        return out

    def __len__(self) -> int:
        return len(self._records) if self._records is not None else self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if self._records is not None:
            return self._records[index]
        if isinstance(index, slice):
            start, stop = index.start or 0, index.stop
            if start < 0 or index.step not in (None, 1):
                return self.records()[index]
            rest = self.records(start)
            return rest if stop is None else rest[:max(stop - start, 0)] if stop >= 0 else rest[:stop]
        n = self._count
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("order log index out of range")
        return self.records(index)[0]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OrderLog):
            other = other.records()
        return isinstance(other, list) and self.records() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OrderLog(path={self.path!r}, records={len(self)})"


__all__ = ["OrderLog", "parse_record", "CHECKPOINT_EVERY"]

"""The b25 trading registry: every ring and state block, declared once (STYLE.md example 4)."""

from __future__ import annotations

from shm import layout as L
from shm.registry import Registry, RingSpec, StateSpec

from . import messages as M

MD_BOOK = "md.book"
MD_TRADE = "md.trade"


def book_state_name(symbol: str) -> str:
    return f"book.{symbol}"


def build_registry(depth: int = M.DEFAULT_DEPTH) -> Registry:
    """The registry for a deployment whose books carry ``depth`` levels per side."""
    reg = Registry()
    book = M.book_update_dtype(depth)
    reg.ring(RingSpec(MD_BOOK, book, 4096, L.POLICY_BROADCAST, ("strategy", "risk")))
    reg.ring(RingSpec(MD_TRADE, M.Trade, 16384, L.POLICY_BROADCAST, ("strategy", "risk")))
    reg.state(StateSpec("book.{symbol}", book, 1))
    return reg

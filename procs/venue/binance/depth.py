"""The depth-sync rules of Binance (docs/binance-usdm-protocol.md A4) and the compiled parse of
a USD-M combined-stream depth frame for FastBook's live hot path.

``L`` = the snapshot's ``lastUpdateId``; a diff carries ``U`` (first update id), ``u`` (last)
and, on USD-M and COIN-M, ``pu`` (the previous diff's ``u``):

* USD-M and COIN-M (``CHAINED``): drop ``u < L``; the first diff applied must have
  ``U <= L <= u`` (``u == L`` occurs in real data and is applied); afterwards ``pu`` must equal
  the previous ``u``. A diff with ``u <=`` the previous ``u`` is a duplicate (stale, dropped);
  anything else is a gap. Update ids are global across symbols, so ``U == prev u + 1`` is *not*
  expected.
* Spot (``CONSECUTIVE``): drop ``u <= L``; first diff ``U <= L + 1 <= u`` (abutting ``U == L +
  1`` is accepted); afterwards stale if ``u <= prev u``, gap if ``U > prev u + 1``.

``procs.book.sync.BookSync`` runs the state machine; these say what each diff is to it.
"""

from __future__ import annotations

from procs.book.sync import APPLY, GAP, STALE
from procs.venue.messages import DepthDiff

# -- the rules ------------------------------------------------------------------------------------


class ChainedRule:
    """USD-M / COIN-M: each diff names the one before it (``pu``). Its frame kernels (the live
    hot path, ``depth_frame``) are numba functions, imported when first asked for."""

    name = "chained"

    @property
    def frame_kernel(self) -> object:
        from .depth_frame import apply_frame

        return apply_frame

    @property
    def probe_kernel(self) -> object:
        from .depth_frame import probe_frame

        return probe_frame

    def bridges(self, ev: DepthDiff, snapshot_id: int) -> int:
        if ev.last_id < snapshot_id:
            return STALE
        return GAP if ev.first_id > snapshot_id else APPLY

    def follows(self, ev: DepthDiff, last_id: int) -> int:
        if ev.prev_id == last_id:
            return APPLY
        return STALE if ev.last_id <= last_id else GAP  # a duplicate or an old diff: the book has it

    def why(self, ev: DepthDiff, ref_id: int, first: bool) -> str:
        if first:
            return f"first diff U={ev.first_id} > L={ref_id} u={ev.last_id}"
        return f"pu={ev.prev_id} != last_u={ref_id} (U={ev.first_id} u={ev.last_id})"

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the frame kernels now, not on the first live diff."""
        from .depth_frame import compile_kernels

        compile_kernels()


class ConsecutiveRule:
    """Spot: each diff starts where the last one ended."""

    name = "consecutive"
    frame_kernel = None
    probe_kernel = None

    def bridges(self, ev: DepthDiff, snapshot_id: int) -> int:
        if ev.last_id <= snapshot_id:
            return STALE
        return GAP if ev.first_id > snapshot_id + 1 else APPLY

    def follows(self, ev: DepthDiff, last_id: int) -> int:
        if ev.last_id <= last_id:
            return STALE
        return GAP if ev.first_id > last_id + 1 else APPLY

    def why(self, ev: DepthDiff, ref_id: int, first: bool) -> str:
        if first:
            return f"first diff U={ev.first_id} > L+1={ref_id + 1} u={ev.last_id}"
        return f"spot gap: U={ev.first_id} > last_u+1={ref_id + 1} u={ev.last_id}"

    def warm_up(self) -> None:
        """Nothing to compile: no frame kernel."""


CHAINED = ChainedRule()
CONSECUTIVE = ConsecutiveRule()
RULES = {"usdm": CHAINED, "coinm": CHAINED, "spot": CONSECUTIVE}  # by market (recordings.KINDS)

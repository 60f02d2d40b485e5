"""The trading-state machine: ACTIVE / REDUCING / HALTED as the strictest of the current holds.

A *hold* is a reason with a level (kill switch -> HALTED, daily loss -> configured, drawdown ->
configured, reconciliation mismatch -> REDUCING, operator -> REDUCING, margin ratio and leverage
-> REDUCING then HALTED when they last, crisis mode -> REDUCING). The trading state is
the highest level held, and ``halt_reason`` names the hold that sets it. Anyone may tighten
(add a hold); loosening needs a non-empty operator name: ``release`` is only called by the
engine's operator commands, which check it and say why when they refuse.
"""

from __future__ import annotations

from procs.core import messages as M

# RiskState.halt_reason: the hold that sets the trading state (0 while ACTIVE)
REASON_NONE = 0
REASON_KILL_SWITCH = 1
REASON_DAILY_LOSS = 2
REASON_DRAWDOWN = 3
REASON_RECONCILE = 4
REASON_OPERATOR = 5
REASON_MARGIN = 6  # the margin ratio over [risk] max_margin_ratio
REASON_LEVERAGE = 7  # a position's leverage over its max_leverage
REASON_CRISIS = 8  # crisis mode (procs/risk/crisis.py)
REASON_NAMES = {REASON_NONE: "none", REASON_KILL_SWITCH: "kill_switch", REASON_DAILY_LOSS: "daily_loss",
                REASON_DRAWDOWN: "drawdown", REASON_RECONCILE: "reconcile_mismatch", REASON_OPERATOR: "operator",
                REASON_MARGIN: "margin_ratio", REASON_LEVERAGE: "leverage", REASON_CRISIS: "crisis"}
# ties between holds of the same level name the first of these
_PRIORITY = (REASON_KILL_SWITCH, REASON_DAILY_LOSS, REASON_DRAWDOWN, REASON_MARGIN, REASON_LEVERAGE, REASON_CRISIS,
             REASON_RECONCILE, REASON_OPERATOR)


class TradingState:
    """Holds by reason; ``state`` and ``reason`` follow from them."""

    def __init__(self) -> None:
        self.holds: dict[int, int] = {}
        self.state = M.ACTIVE
        self.reason = REASON_NONE
        self.changes = 0

    def _settle(self) -> bool:
        state, reason = M.ACTIVE, REASON_NONE
        for r in _PRIORITY:
            lvl = self.holds.get(r, 0)
            if lvl > state:
                state, reason = lvl, r
        changed = (state, reason) != (self.state, self.reason)
        if state != self.state:
            self.changes += 1
        self.state, self.reason = state, reason
        return changed

    def hold(self, reason: int, level: int) -> bool:
        """Add or raise a hold; True when the state or its reason changed."""
        if self.holds.get(reason, 0) >= level:
            return False
        self.holds[reason] = level
        return self._settle()

    def release(self, reason: int) -> bool:
        if reason not in self.holds:
            return False
        del self.holds[reason]
        return self._settle()

    def held(self, reason: int) -> bool:
        return reason in self.holds

    @property
    def name(self) -> str:
        return M.TRADING_STATE_NAMES[self.state]

    def describe(self) -> str:
        return ",".join(f"{REASON_NAMES[r]}={M.TRADING_STATE_NAMES[lvl]}" for r, lvl in self.holds.items()) or "-"

"""Alert codes risk publishes to ``alerts.risk`` (Alert records: level, code, symbol, value, text).

Codes are events (past tense). ``value`` carries the number that matters (the loss, the
drawdown, the exchange's position) as a float for people; the exact figure is in the log line.
"""

from __future__ import annotations

from collections.abc import Callable

STATE_CHANGED = 1  # value = new trading state
KILL_SWITCH_ON = 2
KILL_SWITCH_OFF = 3
COMMAND_REFUSED = 4  # a loosening command without an operator, or one a breach still blocks
DAILY_LOSS_BREACHED = 5  # value = daily net P&L (quote)
DRAWDOWN_BREACHED = 6  # value = drawdown (quote)
RECONCILE_MISMATCH = 7  # value = the exchange's position (base units)
RECONCILE_FAILED = 8
RECONCILE_MATCHED = 9  # the first match after a mismatch or failure
CANCEL_ALL_SENT = 10
CANCEL_ALL_FAILED = 11
LIMITS_RELOADED = 12
RELOAD_FAILED = 13
POSITION_OVER_LIMIT = 14  # value = net position (base units): fills took it past max_position
DAY_ROLLED = 15
UNKNOWN_SYMBOL = 16  # an OrderEvent with a symbol_id outside the configured symbols
BREACH_CLEARED = 17  # an operator cleared a loss/drawdown/reconcile hold
POSITION_SEEDED = 18  # value = the position taken from the exchange at start (base units)
HOLDS_RESTORED = 19  # the kill switch / operator / loss / drawdown holds of the last run, taken back at start
HOLDS_SAVE_FAILED = 20  # the holds file could not be written: a restart would not keep them
MARGIN_RATIO_BREACHED = 21  # value = the margin ratio (maintenance / margin balance)
LEVERAGE_BREACHED = 22  # value = the position's leverage
LIMIT_ESCALATED = 23  # a margin/leverage breach lasted limit_halt_after_s: HALTED
LIMIT_CLEARED = 24  # a margin/leverage breach went away while REDUCING: that hold is released
CRISIS_ENTERED = 25  # value = the trigger's measure (bps, seconds, quote); text names the trigger
MARK_SOURCE_CHANGED = 26  # value = RiskState.mark_source: the exchange's mark went missing or came back
MARGIN_UNKNOWN = 27  # a position in a symbol without margin brackets: no maintenance margin, no margin limit

NAMES = {v: k.lower() for k, v in dict(globals()).items() if k.isupper() and isinstance(v, int)}

AlertSink = Callable[[int, int, int, float, str], None]
"""(level, code, symbol_id, value, text) -> None"""

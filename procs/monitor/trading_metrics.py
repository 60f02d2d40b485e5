"""Trading families for /metrics: the risk state as gauges, and fills and refusals by kind from
the ``exec`` events the monitor observes. The process counters (``collector.ShmCollector``) say
how much work each process did; these say what the account and its orders are doing.

Families (labels):
  b25_risk_trading_state                    1 ACTIVE, 2 REDUCING, 3 HALTED (absent while risk.state is)
  b25_risk_halt_reason{reason}              1 for the hold that sets the state (kill_switch, daily_loss, ...)
  b25_risk_equity, b25_risk_drawdown        quote units, from risk.state
  b25_risk_daily_pnl                        quote units, from risk's counters
  b25_risk_position_lots{symbol}            risk's net position per symbol
  b25_rate_limit_usage_ratio                execution's fullest exchange rate-limit window, 0..1
  b25_order_fills_total{liquidity}          maker / taker, fills seen on exec since the monitor attached
  b25_order_refusals_total{kind,reason}     kind denied (b25's pre-trade check, reason by name) or
                                            rejected (the exchange, reason = its error code)
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from procs.core import messages as M
from procs.core.registry import RISK_STATE
from procs.risk.state import REASON_NAMES

from .shmview import InstanceView


class OrderStats:
    """Fills by liquidity and refusals by reason, counted from exec events (reset with the ring)."""

    def __init__(self) -> None:
        self.fills: Tally[str] = Tally()
        self.refusals: Tally[tuple[str, str]] = Tally()

    def apply(self, events: np.ndarray) -> None:
        kinds = events["kind"]
        fills = events[(kinds == M.ORDER_FILLED) | (kinds == M.ORDER_PARTIALLY_FILLED)]
        makers = int(np.count_nonzero(fills["flags"] & M.FLAG_MAKER))
        self.fills["maker"] += makers
        self.fills["taker"] += len(fills) - makers
        for ev in events[kinds == M.ORDER_DENIED]:
            self.refusals["denied", M.DENY_NAMES.get(int(ev["reason"]), str(int(ev["reason"])))] += 1
        for ev in events[kinds == M.ORDER_REJECTED]:
            self.refusals["rejected", str(int(ev["reason"]))] += 1


class TradingCollector(Collector):
    """Reads risk.state and risk's and execution's counters on each scrape; ``stats`` is fed by the monitor."""

    def __init__(self, view: InstanceView, symbols: list[str]) -> None:
        self.view = view
        self.symbols = symbols
        self.stats = OrderStats()

    def collect(self) -> Iterator:
        yield from self._risk()
        usage = GaugeMetricFamily("b25_rate_limit_usage_ratio",
                                  "execution: the fullest exchange rate-limit window's known use (0..1)")
        got = self.view.counters("execution")
        if got is not None and "rate_limit_used_permille" in got[0]:
            usage.add_metric([], got[0]["rate_limit_used_permille"] / 1000)
        yield usage
        fills = CounterMetricFamily("b25_order_fills", "fills on exec by liquidity", labels=["liquidity"])
        for liquidity in ("maker", "taker"):
            fills.add_metric([liquidity], self.stats.fills[liquidity])
        yield fills
        refusals = CounterMetricFamily("b25_order_refusals", "orders denied by b25 or rejected by the exchange",
                                       labels=["kind", "reason"])
        for (kind, reason), n in sorted(self.stats.refusals.items()):
            refusals.add_metric([kind, reason], n)
        yield refusals

    def _risk(self) -> Iterator:
        state = GaugeMetricFamily("b25_risk_trading_state", "1 ACTIVE, 2 REDUCING, 3 HALTED")
        reason = GaugeMetricFamily("b25_risk_halt_reason", "1 for the hold that sets the trading state",
                                   labels=["reason"])
        equity = GaugeMetricFamily("b25_risk_equity", "account equity (quote units)")
        drawdown = GaugeMetricFamily("b25_risk_drawdown", "drawdown from the equity peak (quote units)")
        daily = GaugeMetricFamily("b25_risk_daily_pnl", "net P&L since the UTC day began (quote units)")
        position = GaugeMetricFamily("b25_risk_position_lots", "net position (lots)", labels=["symbol"])
        got = self.view.state(RISK_STATE, M.RiskState).read()
        if got is not None:
            r = got[0][0]
            state.add_metric([], float(r["trading_state"]))
            held = int(r["halt_reason"])
            for code, name in REASON_NAMES.items():
                if code:
                    reason.add_metric([name], 1.0 if code == held else 0.0)
            equity.add_metric([], int(r["equity_e8"]) / 1e8)
            drawdown.add_metric([], int(r["drawdown_e8"]) / 1e8)
            for i, sym in enumerate(self.symbols[: M.MAX_SYMBOLS]):
                position.add_metric([sym], float(r["position"][i]))
        counters = self.view.counters("risk")
        if counters is not None and "daily_pnl_e8" in counters[0]:
            daily.add_metric([], counters[0]["daily_pnl_e8"] / 1e8)
        yield from (state, reason, equity, drawdown, daily, position)

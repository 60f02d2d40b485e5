"""Strategy engine: loads strategy plugins, routes market data and order events to them, keeps
their positions and P&L, and writes their intents to ``orders.strategy`` (see ``engine``).

Plugins import what they need from here::

    from procs.strategy import BUY, SELL, BookView, Strategy, StrategyConfig
"""

from procs.core.messages import BUY, GTC, IOC, LIMIT, MARKET, POST_ONLY, SELL

from .api import (
    DECISION_BUY,
    DECISION_CANCEL,
    DECISION_NONE,
    DECISION_QUOTE,
    DECISION_SELL,
    ERR_BAD_INTENT,
    ERR_HELD,
    ERR_NOT_RUNNING,
    ERR_RING_FULL,
    ERR_SYMBOL,
    ERR_UNKNOWN_ORDER,
    BookView,
    OrderEventView,
    Strategy,
    StrategyApi,
    StrategyConfig,
    TradeView,
)
from .state import CANCELING, SUBMITTED, WORKING, Order

__all__ = [
    "BUY", "SELL", "GTC", "IOC", "LIMIT", "MARKET", "POST_ONLY",
    "DECISION_BUY", "DECISION_CANCEL", "DECISION_NONE", "DECISION_QUOTE", "DECISION_SELL",
    "ERR_BAD_INTENT", "ERR_HELD", "ERR_NOT_RUNNING", "ERR_RING_FULL", "ERR_SYMBOL", "ERR_UNKNOWN_ORDER",
    "BookView", "OrderEventView", "Strategy", "StrategyApi", "StrategyConfig", "TradeView",
    "CANCELING", "SUBMITTED", "WORKING", "Order",
]

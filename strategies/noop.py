"""DoNothing: a strategy that does nothing (the backtest benchmark's floor: the engine, the book
and the exchange run, no callback does any work)."""

from __future__ import annotations

from procs.strategy import Strategy, StrategyConfig


class DoNothingConfig(StrategyConfig):
    pass


class DoNothing(Strategy):
    config_class = DoNothingConfig

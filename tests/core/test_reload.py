"""What a reload can apply and what needs a restart, per service and field."""

from __future__ import annotations

import tomllib

from procs.core.reload import changes, plan, refusal
from procs.execution.config import ExecutionConfig
from procs.market_data.config import MarketDataConfig
from procs.risk.config import RiskConfig
from tests.support import ROOT

SHIPPED = tomllib.loads((ROOT / "b25.toml").read_text())


def _with(doc: dict, section: str, **fields: object) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in doc.items()}
    out.setdefault(section, {}).update(fields)
    return out


def test_changes_when_nested_tables_and_arrays_differ_then_each_field_by_dotted_path() -> None:
    old = {"risk": {"default": {"max_position": "0.5"}}, "strategy": {"strategies": [{"id": "a", "params": {"q": 1}}]}}
    new = {"risk": {"default": {"max_position": "0.2"}, "max_drawdown": "5"},
           "strategy": {"strategies": [{"id": "a", "params": {"q": 2}}]}}
    got = {(c.path, c.old, c.new) for c in changes(old, new)}
    assert got == {("risk.default.max_position", "0.5", "0.2"), ("risk.max_drawdown", None, "5"),
                   ("strategy.strategies[0].params.q", 1, 2)}


def test_plan_when_a_risk_limit_changes_then_only_risk_reloads() -> None:
    p = plan(SHIPPED, _with(SHIPPED, "risk", max_daily_loss="500"))
    assert set(p) == {"risk"} and p["risk"].action == "reload"
    assert [c.path for c in p["risk"].reload] == ["risk.max_daily_loss"]


def test_plan_when_a_risk_runtime_or_history_field_changes_then_risk_needs_a_restart() -> None:
    p = plan(SHIPPED, _with(SHIPPED, "risk", history={"interval_s": 2.0}))
    assert p["risk"].action == "restart" and p["risk"].restart[0].path == "risk.history.interval_s"


def test_plan_when_deploy_or_venue_changes_then_every_process_needs_a_restart() -> None:
    p = plan(SHIPPED, _with(SHIPPED, "deploy", depth=10))
    assert {n for n, sp in p.items() if sp.action == "restart"} >= {"market_data", "strategy", "execution", "risk",
                                                                    "monitor"}


def test_plan_when_an_execution_field_changes_then_a_restart_naming_it() -> None:
    p = plan(SHIPPED, _with(SHIPPED, "execution", fsync="always"))
    assert p["execution"].action == "restart" and [c.path for c in p["execution"].restart] == ["execution.fsync"]


def test_plan_when_a_market_data_watchdog_field_changes_then_reload() -> None:
    p = plan(SHIPPED, _with(SHIPPED, "market_data", stale_after_s=9.0))
    assert p["market_data"].action == "reload"


def test_refusal_when_a_restart_only_field_changes_then_it_names_section_and_field() -> None:
    why = refusal("market_data", MarketDataConfig, {"stale_after_s": 5.0}, {"stale_after_s": 6.0, "book_engine": "python"})
    assert why.startswith("reload refused: [market_data] book_engine can only change with a restart")
    assert refusal("market_data", MarketDataConfig, {}, {"stale_after_s": 6.0}) == ""
    assert "[execution] journal" in refusal("execution", ExecutionConfig, {}, {"journal": "/tmp/j"})
    assert refusal("risk", RiskConfig, {}, {"max_drawdown": "1", "default": {"max_position": "1"}}) == ""

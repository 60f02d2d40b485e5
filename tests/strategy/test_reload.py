"""Hot reload in the engine: code and config change, state (positions, open orders) stays."""

from __future__ import annotations

from typing import Any

from procs.core import messages as M
from tests.support.strategy_harness import BTC, Harness, engine_config

BOT = """
from procs.strategy import BUY, Strategy, StrategyConfig

class BotConfig(StrategyConfig):
    offset: int = 100

class Bot(Strategy):
    VERSION = {version}

    def __init__(self, config, api):
        super().__init__(config, api)
        self.seen = []

    def on_book(self, book):
        self.seen.append(self.VERSION)
        sid = book.symbol_id
        if not self.api.open_orders(sid):
            self.api.submit_limit(sid, BUY, book.best_bid - self.config.offset - self.VERSION, 2)
"""
BROKEN = BOT.replace("def on_book(self, book):", "def on_book(self, book:")


class Deployment:
    """The [strategy] section a reload re-reads; tests edit ``entries``."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    def read(self):
        return engine_config(self.entries)


def bot(mod: str, sid: str = "bot", **params) -> dict[str, Any]:
    return {"id": sid, "class": f"{mod}:Bot", "symbols": ["BTCUSDT"], "params": params}


def book(h: Harness) -> None:
    h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
    h.work()


def test_reload_when_code_changed_then_keeps_positions_and_open_orders(instance, plugins):
    mod = plugins.module(BOT.format(version=1))
    dep = Deployment([bot(mod)])
    h = Harness(instance, dep.entries, read_config=dep.read)
    try:
        book(h)
        (i,) = h.intents()
        assert i["price"] == 100000 - 100 - 1
        h.accept(i)
        h.fill(i, qty=1, cum=1)  # half filled: long 1, the order still works for the other lot
        h.work()
        state = h.engine.states["bot"]
        old = h.engine.slots["bot"].strategy
        plugins.module(BOT.format(version=2), name=mod)
        assert h.engine.reload()
        new = h.engine.slots["bot"].strategy
        assert new is not old and type(new).VERSION == 2
        assert h.engine.states["bot"] is state and state.positions[BTC].qty == 1
        assert list(state.orders) == [i["client_tag"]] and state.orders[i["client_tag"]].filled == 1
        book(h)
        assert new.seen == [2] and h.intents() == []  # v2 sees v1's open order: nothing new
        h.fill(i, qty=1, cum=2)  # the rest fills after the reload: same state, same position
        h.work()
        assert state.positions[BTC].qty == 2 and not state.orders
        book(h)
        (j,) = h.intents()
        assert j["price"] == 100000 - 100 - 2 and j["client_tag"] == i["client_tag"] + 1
        assert h.counter("reloads") == 1
        assert [v["code"]["bot"] for v in h.engine.versions][0] != h.engine.versions[-1]["code"]["bot"]
    finally:
        h.close()


def test_reload_when_new_code_has_syntax_error_then_old_version_keeps_running(instance, plugins, capfd):
    mod = plugins.module(BOT.format(version=1))
    dep = Deployment([bot(mod)])
    h = Harness(instance, dep.entries, read_config=dep.read)
    try:
        book(h)
        old = h.engine.slots["bot"].strategy
        plugins.module(BROKEN.format(version=2), name=mod)
        assert not h.engine.reload()
        assert h.engine.slots["bot"].strategy is old and not h.engine.slots["bot"].paused
        err = capfd.readouterr().err
        assert '"reload_failed"' in err and "SyntaxError" in err
        assert h.counter("reload_failures") == 1 and h.counter("reloads") == 0
        book(h)
        assert old.seen == [1, 1]
        plugins.module(BOT.format(version=3), name=mod)  # fixed: the next reload takes it
        assert h.engine.reload()
        assert type(h.engine.slots["bot"].strategy).VERSION == 3
        assert len(h.engine.versions) == 2  # start + the good reload; the failed one applied nothing
    finally:
        h.close()


def test_reload_when_param_is_invalid_then_fails_naming_the_field_and_keeps_old(instance, plugins, capfd):
    mod = plugins.module(BOT.format(version=1))
    dep = Deployment([bot(mod)])
    h = Harness(instance, dep.entries, read_config=dep.read)
    try:
        old = h.engine.slots["bot"].strategy
        dep.entries = [bot(mod, offsett=5)]
        assert not h.engine.reload()
        assert "offsett" in capfd.readouterr().err
        dep.entries = [bot(mod, offset="far")]
        assert not h.engine.reload()
        assert "$.offset" in capfd.readouterr().err
        assert h.engine.slots["bot"].strategy is old
        dep.entries = [bot(mod, offset=7)]
        assert h.engine.reload()
        assert h.engine.slots["bot"].strategy.config.offset == 7
    finally:
        h.close()


def test_reload_when_one_entry_changed_then_only_that_strategy_is_rebuilt(instance, plugins):
    mod = plugins.module(BOT.format(version=1))
    dep = Deployment([bot(mod, "a"), bot(mod, "b")])
    h = Harness(instance, dep.entries, read_config=dep.read)
    try:
        a, b = h.engine.slots["a"].strategy, h.engine.slots["b"].strategy
        dep.entries = [bot(mod, "a"), bot(mod, "b", offset=50)]
        assert h.engine.reload()
        assert h.engine.slots["a"].strategy is a and h.engine.slots["b"].strategy is not b
        v1, v2 = h.engine.versions
        assert v1["config_hash"] != v2["config_hash"] and v2["changed"] == ["b"]
        assert h.engine.reload()  # nothing changed: nothing rebuilt, the version is still recorded
        assert h.engine.versions[-1]["changed"] == [] and h.engine.versions[-1]["config_hash"] == v2["config_hash"]
    finally:
        h.close()


def test_reload_when_strategy_was_paused_then_it_resumes(instance, plugins):
    from tests.support.strategy_harness import RAISER
    mod = plugins.module(RAISER)
    dep = Deployment([{"id": "r", "class": f"{mod}:Raiser", "symbols": ["BTCUSDT"]}])
    h = Harness(instance, dep.entries, read_config=dep.read)
    try:
        book(h)
        book(h)
        assert h.engine.slots["r"].paused and h.counter("paused") == 1
        h.intents()
        assert h.engine.reload()
        assert not h.engine.slots["r"].paused and h.counter("paused") == 0
        book(h)
        assert [i["kind"] for i in h.intents()] == [M.SUBMIT_ORDER]
    finally:
        h.close()


def test_reload_when_strategy_removed_then_its_orders_are_cancelled_and_state_kept(instance, plugins):
    mod = plugins.module(BOT.format(version=1))
    dep = Deployment([bot(mod, "a"), bot(mod, "b")])
    h = Harness(instance, dep.entries, read_config=dep.read)
    try:
        book(h)
        placed = {i["strategy_id"]: i for i in h.intents()}
        dep.entries = [bot(mod, "a")]
        assert h.engine.reload()
        assert "b" not in h.engine.slots and "b" in h.engine.states
        (c,) = h.intents()
        b_num = h.engine.states["b"].num
        assert c["kind"] == M.CANCEL_ORDER and c["client_tag"] == placed[b_num]["client_tag"]
        h.event(placed[b_num], M.ORDER_CANCELED)  # its events still reach its state
        h.work()
        assert not h.engine.states["b"].orders
    finally:
        h.close()

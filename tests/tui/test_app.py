"""The TUI with Pilot against real shared memory the test fills."""

from __future__ import annotations

from procs.core import control as C
from procs.core import messages as M
from procs.core.registry import ORDERS_MANUAL, book_state_name, build_registry
from shm.ring import Consumer
from tests.support.tui import rows, run, until
from tests.support.tui_world import DEPTH
from tui.commands import TokenGate
from tui.panels import BookLadder, OrdersPanel, ProcessesPanel, TradesTape
from tui.screens import ConfirmScreen, OrderEntryScreen, TokenScreen


def test_book_ladder_when_book_block_filled_then_shows_levels_and_own_orders(world, make_app):
    world.standard()
    app = make_app()

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            ladder = app.query_one(BookLadder)
            await until(pilot, lambda: ladder.row_count == 10)
            r = rows(ladder)
            # asks highest first, then bids best first; prices in the instrument's decimals
            assert [x[2] for x in r] == ["60000.5", "60000.4", "60000.3", "60000.2", "60000.1",
                                         "60000", "59999.9", "59999.8", "59999.7", "59999.6"]
            assert r[4][3] == "0.5" and r[5][1] == "1"
            assert r[7][0] == "B 0.02"  # our open buy at 59999.8; the filled sell is not marked
            assert all(x[0] == "" for i, x in enumerate(r) if i != 7)
            tape = app.query_one(TradesTape)
            await until(pilot, lambda: tape.row_count == 6)
            assert rows(tape)[0] == ["00:00:01.250", "60000.1", "0.01", "sell"]
            orders = app.query_one(OrdersPanel)
            assert rows(orders)[0][:5] == ["OPEN", "BUY", "59999.8", "0.02", "BTCUSDT"]
            # the book moves: the ladder follows
            world.set_book(bids=[(5_000_000, 1)], asks=[(5_000_100, 2)], update_id=2)
            await until(pilot, lambda: ladder.row_count == 2)
            assert [x[2] for x in rows(ladder)] == ["50001", "50000"]

    run(go())


def test_book_ladder_when_segment_removed_and_recreated_then_shows_no_book_and_reattaches(instance, world, make_app):
    world.standard()
    app = make_app()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            ladder = app.query_one(BookLadder)
            await until(pilot, lambda: ladder.row_count == 10)
            world.book.close(unlink=True)  # market_data gone and its segment cleaned
            await until(pilot, lambda: ladder.row_count == 0)
            assert "no book" in str(ladder.border_title)
            world.book = build_registry(DEPTH).writer(instance, book_state_name("BTCUSDT"))  # restarted
            world.set_book(bids=[(6_100_000, 3)], asks=[(6_100_010, 4)])
            await until(pilot, lambda: ladder.row_count == 2)
            assert [x[2] for x in rows(ladder)] == ["61000.1", "61000"]

    run(go())


def test_processes_when_a_heartbeat_is_old_then_that_process_is_shown_stale(world, make_app):
    world.beat()
    world.make_stale("risk")
    app = make_app()

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("4")
            table = app.query_one(ProcessesPanel)
            await until(pilot, lambda: table.row_count >= 4)
            world.beat()
            world.make_stale("risk")
            await pilot.pause(0.1)
            health = {r[0]: (r[2], r[9]) for r in rows(table)}
            assert health["risk"][0] == "STALE" and "heartbeat" in health["risk"][1]
            assert health["strategy"][0] == "OK"
            assert health["execution"][0] == "OK"

    run(go())


def _manual_ring(instance: str) -> Consumer:
    return Consumer.attach(instance, ORDERS_MANUAL, M.OrderIntent, None, timeout=1.0, from_start=True)


async def _fill_form(app, pilot, **values: str) -> OrderEntryScreen:
    await pilot.press("o")
    await until(pilot, lambda: isinstance(app.screen, OrderEntryScreen))
    form = app.screen
    from textual.widgets import Input
    for k, v in values.items():
        form.query_one(f"#{k}", Input).value = v
    await pilot.click("#submit")
    return form


def test_manual_order_when_form_valid_then_writes_order_intent_to_orders_manual(instance, world, make_app):
    world.standard()
    app = make_app()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("s")  # next symbol: the form starts on ETHUSDT
            assert app.symbol == "ETHUSDT"
            await _fill_form(app, pilot, side="sell", price="2500.25", qty="0.5")
            await until(pilot, lambda: not isinstance(app.screen, OrderEntryScreen))
            assert app.last_message.startswith("sent manual order #1")

    run(go())
    ring = _manual_ring(instance)
    try:
        got = ring.poll()
        assert len(got) == 1
        o = got[0]
        assert (int(o["kind"]), int(o["source"]), int(o["symbol_id"]), int(o["side"])) == \
            (M.SUBMIT_ORDER, M.SOURCE_MANUAL, 1, M.SELL)
        assert (int(o["order_type"]), int(o["price"]), int(o["qty"]), int(o["intent_id"])) == (M.LIMIT, 250025, 500, 1)
        assert int(o["ts_intent"]) > 0
    finally:
        ring.close()


def test_manual_stop_when_form_type_stop_then_writes_a_reduce_only_stop_with_its_trigger(instance, world, make_app):
    world.standard()
    app = make_app()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await _fill_form(app, pilot, side="sell", type="stop", price="2400.50", qty="0.5")
            await until(pilot, lambda: not isinstance(app.screen, OrderEntryScreen))
            assert "STOP_MARKET at 2400.5 (reduce-only)" in app.last_message

    run(go())
    ring = _manual_ring(instance)
    try:
        (o,) = ring.poll()
        assert (int(o["kind"]), int(o["side"]), int(o["order_type"]), int(o["price"]), int(o["trigger_price"]),
                int(o["qty"]), int(o["reduce_only"])) == (M.SUBMIT_ORDER, M.SELL, M.STOP_MARKET, 0, 240050, 500, 1)
    finally:
        ring.close()


def test_manual_order_when_price_is_bad_then_refuses_naming_price_and_writes_nothing(instance, world, make_app):
    world.standard()
    app = make_app()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            form = await _fill_form(app, pilot, price="60000.001", qty="0.01")
            await pilot.pause(0.05)
            assert app.screen is form  # still open
            from textual.widgets import Input, Static
            err = str(form.query_one("#error", Static).render())
            assert err.startswith("price:") and "tick size 0.01" in err
            assert app.focused is form.query_one("#price", Input)
            form.query_one("#price", Input).value = "abc"
            await pilot.click("#submit")
            await pilot.pause(0.05)
            assert "price: not a number" in str(form.query_one("#error", Static).render())
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, OrderEntryScreen))

    run(go())
    # nothing was published: the TUI never even created orders.manual
    from shm.segment import list_segments
    assert not [s for s in list_segments(instance) if s.endswith(ORDERS_MANUAL)]


def test_kill_switch_when_confirmed_then_sends_set_kill_switch_to_risk(instance, world, make_app):
    inbox = C.ControlInbox(instance, "risk")
    app = make_app()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")  # declined: nothing sent
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            assert inbox.poll() == []
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "kill switch ON" in str(app.screen.query_one("#question").render())
            await pilot.click("#yes")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))

    try:
        run(go())
        assert inbox.poll() == [C.SetKillSwitch(on=True, operator="test")]
    finally:
        inbox.close(unlink=True)


def test_web_session_when_a_state_changing_key_is_pressed_then_the_ops_token_is_asked_first(instance, world, make_app):
    risk, execution = C.ControlInbox(instance, "risk"), C.ControlInbox(instance, "execution")
    app = make_app(TokenGate("s3cret"))

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            for key in ("c", "R", "o"):  # cancel-all, reload, order: each asks, escape sends nothing
                await pilot.press(key)
                await until(pilot, lambda: isinstance(app.screen, TokenScreen))
                await pilot.press("escape")
                await until(pilot, lambda: not isinstance(app.screen, TokenScreen))
            assert "cancelled" in app.last_message
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, TokenScreen))
            await pilot.press(*"guess", "enter")
            await until(pilot, lambda: "wrong ops token" in app.last_message)
            assert execution.poll() == []
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, TokenScreen))
            assert "kill switch ON" in str(app.screen.query_one("#token-title").render())
            await pilot.press(*"s3cret", "enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))  # then the usual confirmation
            await pilot.click("#yes")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))

    try:
        run(go())
        assert risk.poll() == [C.SetKillSwitch(on=True, operator="test")]
        assert execution.poll() == []
    finally:
        risk.close(unlink=True)
        execution.close(unlink=True)


def test_web_session_when_no_token_is_configured_then_every_state_changing_key_is_refused():
    gate = TokenGate("")
    assert "no ops token configured" in gate.check("anything")
    assert TokenGate("t").check(" t ") == "" and "wrong" in TokenGate("t").check("u")


def test_cancel_all_when_pressed_then_sends_cancel_all_to_execution(instance, world, make_app):
    inbox = C.ControlInbox(instance, "execution")
    app = make_app()

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("c")
            await pilot.pause(0.05)

    try:
        run(go())
        assert inbox.poll() == [C.CancelAll(symbol="", operator="test")]
    finally:
        inbox.close(unlink=True)


def test_every_tab_when_terminal_is_small_or_large_then_renders(world, make_app):
    world.standard()
    world.beat()

    async def go(size):
        app = make_app()
        async with app.run_test(size=size) as pilot:
            for key in ("1", "2", "3", "4", "question_mark"):
                await pilot.press(key)
                await pilot.pause(0.12)
            await pilot.press("escape")

    run(go((80, 24)))
    run(go((220, 60)))


def test_other_tabs_when_filled_then_show_positions_risk_signals_latency_and_alerts(world, make_app):
    world.standard()
    world.beat()
    app = make_app()

    async def go():
        from textual.widgets import DataTable, ProgressBar, Static

        from tui.panels import AlertsPanel, StrategiesPanel
        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.press("2")
            pos = app.query_one("#positions-table", DataTable)
            await until(pilot, lambda: pos.row_count == 1)
            assert rows(pos)[0][:4] == ["BTCUSDT", "-0.01", "60000.5", "60000.05"]
            assert rows(pos)[0][4] == "0.00"  # short 0.01 at 60000.5, mark 60000.05: +0.0045 rounds to 0.00
            state = app.query_one("#risk-state", Static)
            assert "ACTIVE" in str(state.render()) and "kill switch off" in str(state.render())
            bar = app.query_one("#risk-pos-0", ProgressBar)
            assert (bar.total, bar.progress) == (100, 10)
            world.set_risk(M.HALTED, -10, 100)
            await until(pilot, lambda: "KILL SWITCH ON" in str(state.render()))
            assert "HALTED" in app.sub_title
            await pilot.press("3")
            sig = app.query_one(StrategiesPanel)
            await until(pilot, lambda: sig.row_count == 1)
            assert rows(sig)[0][1:5] == ["1", "BTCUSDT", "+0.2500", "quote"]
            lat = app.query_one("#latency-table", DataTable)
            await until(pilot, lambda: lat.row_count == 1)
            assert rows(lat)[0][:3] == ["strategy", "decide", "4"]
            await pilot.press("4")
            alerts = app.query_one(AlertsPanel)
            await until(pilot, lambda: alerts.row_count == 1)
            assert rows(alerts)[0][1:5] == ["risk", "warn", "BTCUSDT", "position near limit"]

    run(go())


def test_reload_config_key_when_pressed_then_the_file_is_kept_as_a_version_from_the_tui(instance, world, make_app,
                                                                                       tmp_path):
    from procs.core.versions import store_for
    from tests.support import ROOT

    cfg = tmp_path / "b25.toml"
    cfg.write_text((ROOT / "b25.toml").read_text().replace(
        "[deploy]\n", f'[deploy]\nversions_dir = "{tmp_path / "versions"}"\n', 1))
    app = make_app()
    app.commands.config_path = str(cfg)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("L")
            await until(pilot, lambda: app.last_message.startswith("config version"), timeout=20)

    run(go())
    assert app.last_message == "config version 1: no process needed a change"
    ev = store_for(cfg, instance).events()[-1]
    assert (ev.seq, ev.event, ev.source, ev.operator, ev.reason) == (1, "reload", "tui", "test", "reload from the TUI")


def test_cancel_order_when_one_is_selected_and_confirmed_then_a_cancel_intent_names_it(instance, world, make_app):
    world.order_event(M.ORDER_ACCEPTED, M.BUY, 5_999_980, 20, b"b25-m-1", strategy_id=7, client_tag=11)
    world.order_event(M.ORDER_ACCEPTED, M.SELL, 6_000_050, 10, b"b25-m-2", strategy_id=-1, client_tag=3)
    world.order_event(M.ORDER_ACCEPTED, M.SELL, 6_000_090, 10, b"b25-m-3")  # adopted: no client tag
    app = make_app()

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            orders = app.query_one(OrdersPanel)
            await until(pilot, lambda: orders.row_count >= 3)
            assert orders.selected()["client_order_id"] == b"b25-m-1"  # the first until another is chosen
            orders.focus()
            await pilot.press("down")
            assert orders.selected()["client_order_id"] == b"b25-m-2"
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            assert app.last_message == "order left open"
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: app.last_message.startswith("cancel sent"))
            assert app.last_message == "cancel sent for b25-m-2"
            await pilot.press("down", "d")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: "no client tag" in app.last_message)

    run(go())
    ring = _manual_ring(instance)
    try:
        [intent] = ring.poll()
        assert (int(intent["kind"]), int(intent["source"]), int(intent["strategy_id"]), int(intent["client_tag"]),
                int(intent["symbol_id"])) == (M.CANCEL_ORDER, M.SOURCE_MANUAL, -1, 3, 0)
    finally:
        ring.close()


def test_commands_when_an_audit_trail_is_given_then_every_action_is_a_record(instance, tmp_path):
    import numpy as np

    from procs.core.audit import AuditTrail
    from tui.commands import Commands

    cmd = Commands(instance, DEPTH, operator="dana", audit=AuditTrail(tmp_path / "audit.jsonl"))
    order = np.zeros((), M.OrderEvent)
    order["client_order_id"], order["strategy_id"], order["client_tag"] = b"b25-1-9", 5, 9
    try:
        assert cmd.cancel(order) == "cancel sent for b25-1-9"
        assert "not running" in cmd.kill_switch(True)  # no risk here: refused, and recorded as such
    finally:
        cmd.close(unlink=True)
    got = [(r["source"], r["operator"], r["action"], r["args"], r["outcome"]) for r in cmd.audit.tail(5)]
    assert got == [("tui", "dana", "kill_switch", {"on": True}, "risk is not running (no control queue): "
                                                                  "SetKillSwitch not sent"),
                   ("tui", "dana", "cancel_order", {"client_order_id": "b25-1-9"}, "cancel sent for b25-1-9")]

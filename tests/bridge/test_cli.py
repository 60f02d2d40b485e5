"""`b25 nats`: what --since accepts, and how a message is printed."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest

from procs.bridge import schema as S
from procs.bridge.cli import full_subject, parse_since, render

NOW = dt.datetime(2026, 12, 6, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "want"), [
    ("0", None),
    ("90s", NOW - dt.timedelta(seconds=90)),
    ("10m", NOW - dt.timedelta(minutes=10)),
    ("1.5h", NOW - dt.timedelta(hours=1.5)),
    ("2d", NOW - dt.timedelta(days=2)),
    ("1796558400", dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)),
    ("2026-12-06T11:00:00", dt.datetime(2026, 12, 6, 11, 0, tzinfo=dt.UTC)),
    ("2026-12-06T11:00:00+01:00", dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)),
])
def test_parse_since_when_given_each_form_then_a_utc_time(text: str, want: dt.datetime | None) -> None:
    assert parse_since(text, NOW) == want


def test_parse_since_when_unreadable_then_the_error_lists_the_forms() -> None:
    with pytest.raises(ValueError, match=r"unix seconds, an ISO time, a duration ago .* since='yesterday'"):
        parse_since("yesterday", NOW)


def test_render_when_json_then_the_subject_and_every_field_else_one_text_line() -> None:
    msg = S.Alert(seq=3, ring=9, proc="risk", level="critical", code=2, symbol="", value=1.0, text="halted", ts=5)
    raw = msgspec.msgpack.encode(msg)
    row = json.loads(render("b25.main.alerts.critical", raw, True))
    assert row == {"subject": "b25.main.alerts.critical"} | msgspec.to_builtins(msg)
    assert render("b25.main.alerts.critical", raw, False).startswith("b25.main.alerts.critical alert seq=3 ring=9 proc=risk")
    assert json.loads(render("x", b"\xc1", True))["type"] == "undecodable"
    assert full_subject("md.book.*", "main") == "b25.main.md.book.*" == full_subject("b25.main.md.book.*", "other")

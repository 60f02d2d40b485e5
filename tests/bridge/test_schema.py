"""The bridge's messages: both encodings round-trip, either decodes, and docs/bridge.md documents
exactly the fields the code has (a field added or removed on one side only fails here)."""

from __future__ import annotations

import re

import msgspec
import pytest

from procs.bridge import schema as S
from procs.bridge.config import BridgeConfig
from procs.bridge.link import connect_options
from procs.core.config import ConfigError, convert
from tests.support import ROOT


def documented() -> dict[str, list[str]]:
    """type -> its field names from docs/bridge.md's '### <type> (v1)' tables."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / "docs" / "bridge.md").read_text().splitlines():
        m = re.match(r"^### (\w+)( \(command)?.*\(v(\d+)\)", line)
        if m:
            current = m.group(1) + ("/command" if m.group(2) else "")
            out[current] = []
            continue
        m = re.match(r"^\| (\w+) \| ", line)
        if current and m and line != "| field | meaning |":
            out[current].append(m.group(1))
    return out


def test_docs_when_compared_with_the_structs_then_every_message_and_field_agrees() -> None:
    docs = documented()
    for cls in S.ALL:
        key = S.type_name(cls) + ("/command" if issubclass(cls, S.Command) and S.type_name(cls) == "cancel_all" else "")
        fields = [f.encode_name for f in msgspec.structs.fields(cls) if f.encode_name != "v"]
        assert docs.pop(key, None) == fields, f"docs/bridge.md disagrees with schema.{cls.__name__}"
    assert not docs, f"documented but not in procs/bridge/schema.py: {sorted(docs)}"


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_codec_when_a_message_round_trips_then_equal_with_type_and_version(encoding: str) -> None:
    codec = S.Codec(encoding)  # type: ignore[arg-type]
    msg = S.Book(symbol="BTCUSDT", seq=3, update_id=9, ts_event=1, ts_recv=2, ts_pub=3, ts_wall=4, flags=0,
                 price_scale=2, qty_scale=3, bids=[(100, 5), (99, 1)], asks=[(101, 2)], conflated=7)
    raw = codec.encode(msg)
    assert codec.decode(raw) == msg == S.decode_any(raw)
    plain = msgspec.json.decode(raw) if encoding == "json" else msgspec.msgpack.decode(raw)
    assert plain["type"] == "book" and plain["v"] == S.VERSION


def test_decode_when_an_intent_or_command_in_either_encoding_then_typed() -> None:
    sub = S.Submit(intent_id=5, symbol="ETHUSDT", side="SELL", qty=40, price=300000, price_scale=2, qty_scale=3,
                   client_tag=1)
    assert S.decode_any(msgspec.json.encode(sub)) == sub
    assert S.decode_any(msgspec.msgpack.encode(S.KillSwitch(on=True, operator="ann"))) == S.KillSwitch(
        on=True, operator="ann")
    with pytest.raises(msgspec.ValidationError, match="side"):
        S.Codec().decode(b'{"type":"submit","intent_id":1,"symbol":"X","side":"UP","qty":1,"price_scale":1,'
                         b'"qty_scale":1,"client_tag":1}', S.AnyIntent)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"intents": True, "remote_strategies": ["r1"]}, "need NATS authentication"),
    ({"commands": True}, "need NATS authentication"),
    ({"intents": True, "user": "u"}, "needs remote_strategies"),
    ({"remote_strategies": ["bad id"]}, "remote_strategies ids"),
    ({"book_max_hz": -1}, "book_max_hz must be >= 0"),
    ({"poll_ms": 0.5}, "poll_ms"),
    ({"encoding": "xml"}, "encoding"),
])
def test_config_when_a_field_is_bad_then_the_error_names_it(fields: dict, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        convert(fields, BridgeConfig, "b25.toml section [bridge]")


def test_connect_options_when_an_nkey_without_the_nkeys_package_then_the_error_says_so(tmp_path) -> None:
    try:
        import nkeys  # noqa: F401
        pytest.skip("nkeys is installed here: the refusal cannot happen")
    except ImportError:
        pass
    seed = tmp_path / "bridge.nk"
    seed.write_text("SUAB...")
    seed.chmod(0o600)
    with pytest.raises(ValueError, match="needs the Python package nkeys"):
        connect_options(BridgeConfig(nkey_seed_file=str(seed)))
    assert connect_options(BridgeConfig(user="b25", password="pw", url="nats://a:1, nats://b:2")) == {
        "servers": ["nats://a:1", "nats://b:2"], "user": "b25", "password": "pw"}

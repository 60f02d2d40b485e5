"""``b25 nats``: look at what the bridge publishes.

    b25 nats tail SUBJECT [--json] [--count N]     decoded messages as they come (SUBJECT may use
                                                   * and >; without a b25. prefix it is taken
                                                   under b25.<instance>.)
    b25 nats replay --stream exec|alerts|md --since T [--until T] [--json] [--subject S]
                                                   a JetStream stream from T (unix seconds, ISO
                                                   time, 30s/10m/2h/1d ago, or 0 for everything)

The server and credentials come from ``[bridge]`` of ``--config`` (or ``--url``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

import msgspec

from procs.core.config import ConfigError, load_section
from shm.segment import DEFAULT_INSTANCE

from . import schema as S
from .config import BridgeConfig
from .link import connect_options, stream_name

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """``text`` as a UTC time: unix seconds, ISO 8601, or a duration ago (30s, 10m, 2h, 1d); None
    for 0 (from the first message). ValueError says what is accepted."""
    t = text.strip()
    now = now or dt.datetime.now(dt.UTC)
    if t in ("0", ""):
        return None
    if t[-1:] in _UNITS and t[:-1].replace(".", "", 1).isdigit():
        return now - dt.timedelta(seconds=float(t[:-1]) * _UNITS[t[-1]])
    try:
        return dt.datetime.fromtimestamp(float(t), dt.UTC)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"--since must be unix seconds, an ISO time, a duration ago (30s, 10m, 2h, 1d) or 0: "
                         f"since={text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def render(subject: str, data: bytes, as_json: bool) -> str:
    """One line for a message: JSON with the subject, or ``subject type field=value ...``."""
    try:
        msg: Any = msgspec.to_builtins(S.decode_any(data))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        msg = {"type": "undecodable", "error": str(exc), "bytes": len(data)}
    if as_json:
        return json.dumps({"subject": subject, **msg}, separators=(",", ":"))
    kind = msg.pop("type", "?")
    msg.pop("v", None)
    return f"{subject} {kind} " + " ".join(f"{k}={v}" for k, v in msg.items())


def full_subject(subject: str, instance: str) -> str:
    return subject if subject.startswith("b25.") else f"b25.{instance}.{subject}"


async def tail(cfg: BridgeConfig, subject: str, as_json: bool, count: int, timeout: float,
               out: Any = sys.stdout) -> int:
    import nats

    nc = await nats.connect(**connect_options(cfg), connect_timeout=5, allow_reconnect=True)
    seen = 0
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        nonlocal seen
        if done.is_set():
            return  # a message already in flight when the count was reached
        print(render(msg.subject, msg.data, as_json), file=out, flush=True)
        seen += 1
        if count and seen >= count:
            done.set()

    await nc.subscribe(subject, cb=on_msg)
    try:
        await asyncio.wait_for(done.wait(), timeout or None)
    except TimeoutError:
        pass
    finally:
        await nc.close()
    return 0 if not count or seen >= count else 1


async def replay(cfg: BridgeConfig, instance: str, stream: str, since: dt.datetime | None,
                 until: dt.datetime | None, subject: str, as_json: bool, out: Any = sys.stdout) -> int:
    """Print the stream's messages from ``since`` (to ``until``) in stream order; returns 0."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    nc = await nats.connect(**connect_options(cfg), connect_timeout=5)
    try:
        js = nc.jetstream()
        name = stream_name(instance, stream)
        info = await js.stream_info(name)
        if info.state.messages == 0:
            return 0
        conf = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME if since else DeliverPolicy.ALL,
                              opt_start_time=since, ack_policy=AckPolicy.NONE, inactive_threshold=30.0,
                              filter_subject=subject or None)
        sub = await js.pull_subscribe(subject or "", stream=name, config=conf)
        while True:
            try:
                batch = await sub.fetch(512, timeout=2)
            except nats.errors.TimeoutError:
                return 0
            for m in batch:
                md = m.metadata
                if until is not None and md.timestamp is not None and md.timestamp > until:
                    return 0
                print(render(m.subject, m.data, as_json), file=out)
                if md.num_pending == 0:
                    return 0
    finally:
        await nc.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="b25.toml", help="deployment TOML: [bridge] url and credentials")
    p.add_argument("--instance", default=DEFAULT_INSTANCE)
    p.add_argument("--url", default="", help="NATS server(s), instead of [bridge] url")
    s = p.add_subparsers(dest="nats_cmd", required=True)
    t = s.add_parser("tail", help="decoded messages of SUBJECT as they arrive")
    t.add_argument("subject", help="e.g. md.book.BTCUSDT, exec.*, 'alerts.>' or a full b25.<instance>. subject")
    t.add_argument("--json", action="store_true", help="one JSON object per line")
    t.add_argument("--count", type=int, default=0, help="exit after N messages (0: run until Ctrl-C)")
    t.add_argument("--timeout", type=float, default=0, help="exit after this many seconds (0: never)")
    r = s.add_parser("replay", help="a JetStream stream (exec, alerts, md) from a time")
    r.add_argument("--stream", choices=("exec", "alerts", "md"), required=True)
    r.add_argument("--since", required=True, help="unix seconds, ISO time, 30s/10m/2h/1d ago, or 0 for all")
    r.add_argument("--until", default="", help="stop at this time (same forms)")
    r.add_argument("--subject", default="", help="only this subject (e.g. exec.mm_btc)")
    r.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_section(args.config, "bridge", BridgeConfig)
        if args.url:
            cfg = msgspec.structs.replace(cfg, url=args.url)
        if args.nats_cmd == "tail":
            coro = tail(cfg, full_subject(args.subject, args.instance), args.json, args.count, args.timeout)
        else:
            since = parse_since(args.since)
            until = parse_since(args.until) if args.until else None
            subject = full_subject(args.subject, args.instance) if args.subject else ""
            coro = replay(cfg, args.instance, args.stream, since, until, subject, args.json)
        return asyncio.run(coro)
    except (ConfigError, ValueError) as exc:
        print(f"b25 nats: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - a server that is down, a stream that does not exist: say which
        print(f"b25 nats: {type(exc).__name__}: {exc} (servers={cfg.servers})", file=sys.stderr)
        return 1

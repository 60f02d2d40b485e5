"""The bridge's side of NATS: one connection (nats-py), kept up with exponential backoff, the
JetStream streams, and the durable messages held until JetStream acknowledges them.

Nothing here can reach the hot path: the bridge is an observer of the rings, and a NATS server
that is slow, down or gone only changes what this process does with what it already read.

* **Connection.** The first connect is retried from ``reconnect_min_s`` doubling to
  ``reconnect_max_s`` (with jitter); after that nats-py reconnects on its own, asking
  ``_backoff`` for each attempt's delay (same schedule) and re-subscribing.
* **Market data, signals, risk** go out with core NATS publish (at most once). While the
  connection is down they are not sent, and counted (``dropped_outage``).
* **exec, alerts** (with ``jetstream``) are published with a reply subject, so JetStream
  acknowledges each, and the header ``Nats-Msg-Id`` (ring, incarnation, sequence) so a message
  sent twice is stored once. Each waits in ``pending`` until acknowledged; unacknowledged after
  ``ack_timeout_s``, or when the connection comes back, it is sent again. ``pending`` holds at
  most ``buffer_max`` messages: past that new ones are dropped and counted (``dropped_durable``).
  The lowest unacknowledged sequence of each ring is saved in the cursor file, so a restarted
  bridge resumes there (as long as the ring still holds it; lapping is counted).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client, __version__
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from procs.core import log

from .config import BridgeConfig, StreamLimits
from .counters import Counter, Hist
from .outbound import Outgoing

DOWN, CONNECTING, UP = 0, 1, 2
STATE_NAMES = {DOWN: "down", CONNECTING: "connecting", UP: "up"}
# market data waits in nats-py's outbound buffer at most this much; past it (a network slower
# than the feed) new md is dropped and counted, so a slow network never backs up the bridge
OUTBOUND_MAX_BYTES = 8 * 1024 * 1024
DUPLICATE_WINDOW_S = 3600.0  # JetStream remembers message ids this long: a resend within it is stored once


def stream_name(instance: str, kind: str) -> str:
    """The JetStream stream of ``kind`` (exec, alerts, md) for an instance."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in instance)
    return f"b25_{safe}_{kind}"


def stream_configs(cfg: BridgeConfig, instance: str) -> list[StreamConfig]:
    """The streams this deployment keeps: exec and alerts, md when ``md_stream``."""
    p = f"b25.{instance}"

    def conf(kind: str, subjects: list[str], lim: StreamLimits) -> StreamConfig:
        return StreamConfig(name=stream_name(instance, kind), subjects=subjects, max_age=lim.max_age_s,
                            max_bytes=lim.max_bytes, storage=StorageType.FILE, num_replicas=lim.replicas,
                            discard=DiscardPolicy.OLD,
                            duplicate_window=min(DUPLICATE_WINDOW_S, lim.max_age_s),
                            description=f"b25 {instance} {kind} (procs.bridge)")

    out = [conf("exec", [f"{p}.exec.>"], cfg.exec_stream), conf("alerts", [f"{p}.alerts.>"], cfg.alerts_stream)]
    if cfg.md_stream:
        out.append(conf("md", [f"{p}.md.>"], cfg.md_stream_limits))
    return out


def backoff_delay(attempt: int, lo: float, hi: float) -> float:
    """``lo`` doubling per failed attempt up to ``hi``, with up to 20% jitter (servers restarted
    together are not hit by every client at once)."""
    return min(hi, lo * (2 ** min(attempt, 30))) * (1.0 + 0.2 * random.random())


def connect_options(cfg: BridgeConfig) -> dict[str, Any]:
    """nats-py connect() keyword arguments for the configured servers and authentication."""
    opts: dict[str, Any] = {"servers": cfg.servers}
    if cfg.user:
        opts["user"] = cfg.user
        opts["password"] = cfg.password or os.environ.get(cfg.password_env, "") if cfg.password_env else cfg.password
    if cfg.nkey_seed_file:
        try:
            import nkeys  # noqa: F401 - nats-py signs the server's nonce with it
        except ImportError:
            raise ValueError("[bridge] nkey_seed_file needs the Python package nkeys (pip install nkeys), "
                             "which b25 does not install; use user/password instead") from None
        p = Path(cfg.nkey_seed_file)
        if not p.is_file():
            raise ValueError(f"nkey seed file not found: section=[bridge] nkey_seed_file={p}")
        if p.stat().st_mode & 0o077:
            raise ValueError(f"nkey seed file must not be readable by group/others (chmod 600): "
                             f"section=[bridge] nkey_seed_file={p}")
        opts["nkeys_seed"] = str(p)
    return opts


class Pending:
    __slots__ = ("item", "sent_ns", "token")

    def __init__(self, item: Outgoing) -> None:
        self.item = item
        self.sent_ns = 0
        self.token = ""


class Link:
    def __init__(self, cfg: BridgeConfig, instance: str, counters: Any,
                 on_connect: Callable[[Client], Awaitable[None]] | None = None, cursor_file: Path | None = None) -> None:
        self.cfg = cfg
        self.instance = instance
        self.c = counters
        self.on_connect = on_connect
        self.nc: Client | None = None
        self.state = DOWN
        self.pending: dict[str, Pending] = {}  # msg id -> message, in send order
        self._by_token: dict[str, str] = {}
        self._token = 0
        self._ack_prefix = ""
        self.jetstream = cfg.jetstream
        self.streams_ready = False
        self._streams_tried = False  # durable messages are sent once the streams were set up (or tried)
        self._task: asyncio.Task | None = None
        self._closing = False
        self._errors_seen: set[str] = set()
        self.cursor_file = cursor_file
        self._cursors_saved: dict[str, list[int]] = {}
        self._first_unacked: dict[str, tuple[int, int]] = {}

    # -- connection ---------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.state == UP and self.nc is not None and self.nc.is_connected

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._connect_first())

    async def _connect_first(self) -> None:
        attempt = 0
        opts = connect_options(self.cfg)
        while not self._closing:
            self._set_state(CONNECTING)
            try:
                self.nc = await nats.connect(
                    **opts, name=f"b25-bridge-{self.instance}", allow_reconnect=True, max_reconnect_attempts=-1,
                    connect_timeout=2, reconnect_to_server_handler=self._backoff,
                    disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed, error_cb=self._on_error, pending_size=2 * OUTBOUND_MAX_BYTES,
                    skip_subject_validation=True)
                break
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                self._set_state(DOWN)
                delay = backoff_delay(attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
                log.once(f"nats_connect_failed:{type(exc).__name__}", "warn", "nats_connect_failed",
                         servers=self.cfg.servers, reason=repr(exc), retry_s=round(delay, 3))
                attempt += 1
                await asyncio.sleep(delay)
        if self._closing or self.nc is None:
            return
        for attr in ("_pending", "_pending_data_size", "_flush_queue"):  # what send() and _kick() use
            if not hasattr(self.nc, attr):
                raise RuntimeError(f"nats-py {__version__} has no Client.{attr}: procs/bridge/link.py "
                                   f"writes PUB frames into it (pyproject pins the versions it was tested with)")
        self._ack_prefix = self.nc.new_inbox()
        await self.nc.subscribe(self._ack_prefix + ".*", cb=self._on_ack)
        if self.on_connect is not None:
            await self.on_connect(self.nc)
        await self._connected()

    def _backoff(self, servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        attempt = max((s.reconnects for s in servers), default=0)
        return None, backoff_delay(attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)

    async def _connected(self) -> None:
        self.c.inc(Counter.CONNECTS)
        self._set_state(UP)
        log.info("nats_connected", server=str(self.nc.connected_url.netloc if self.nc and self.nc.connected_url else ""))
        if self.jetstream:
            self._streams_tried = False
            await self._ensure_streams()
            self._streams_tried = True
        self.resend(all_of_them=True)

    async def _ensure_streams(self) -> None:
        assert self.nc is not None
        js = self.nc.jsm()
        ok = True
        for sc in stream_configs(self.cfg, self.instance):
            try:
                try:
                    await js.add_stream(sc)
                except nats.js.errors.BadRequestError:  # exists with another config: take ours
                    await js.update_stream(sc)
            except Exception as exc:  # noqa: BLE001 - JetStream off on the server, no permission, limits, a timeout
                ok = False
                log.warn("jetstream_stream_failed", stream=sc.name, reason=repr(exc),
                         error=getattr(exc, "description", ""),
                         detail="its messages are kept and sent again until acknowledged")
        self.streams_ready = ok
        self.c.set(Counter.STREAMS_READY, int(ok))

    async def _on_disconnected(self) -> None:
        if self.state == UP:
            self.c.inc(Counter.DISCONNECTS)
            log.warn("nats_disconnected")
        self._set_state(DOWN if self._closing else CONNECTING)

    async def _on_reconnected(self) -> None:
        await self._connected()

    async def _on_closed(self) -> None:
        self._set_state(DOWN)

    async def _on_error(self, exc: Exception) -> None:
        key = type(exc).__name__
        if key not in self._errors_seen:
            self._errors_seen.add(key)
            log.warn("nats_error", reason=repr(exc))

    def _set_state(self, state: int) -> None:
        self.state = state
        self.c.set(Counter.CONNECTED, 1 if state == UP else 0)

    # -- sending --------------------------------------------------------------------------------
    def send(self, items: list[Outgoing]) -> None:
        """Hand ``items`` to NATS (or hold / drop them, see the module docstring). Never blocks."""
        up = self.up
        nc = self.nc
        now = time.monotonic_ns()
        n = nbytes = 0
        for it in items:
            if it.durable and self.jetstream:
                if it.msg_id in self.pending:
                    continue
                if len(self.pending) >= self.cfg.buffer_max:
                    self.c.inc(Counter.DROPPED_DURABLE)
                    log.once("durable_buffer_full", "warn", "durable_buffer_full", buffer_max=self.cfg.buffer_max,
                             detail="exec/alerts messages dropped until JetStream acknowledges the held ones")
                    continue
                p = Pending(it)
                self.pending[it.msg_id] = p
                if it.durable not in self._first_unacked:
                    self._first_unacked[it.durable] = (it.created_ns, it.seq)
                if up and self._streams_tried:
                    self._publish_durable(p, now)
                    n += 1
                    nbytes += len(it.payload)
                continue
            if not up:
                self.c.inc(Counter.DROPPED_OUTAGE)
                continue
            assert nc is not None
            if nc._pending_data_size > OUTBOUND_MAX_BYTES:  # noqa: SLF001 - a slow network: never queue md behind it
                self.c.inc(Counter.DROPPED_SLOW)
                continue
            nc._pending.append(_pub(it.subject, it.payload))  # noqa: SLF001 - see _write
            nc._pending_data_size += len(it.payload) + 64  # noqa: SLF001
            n += 1
            nbytes += len(it.payload)
            if it.ts_pub:
                self.c.record(Hist.RING_TO_NATS, now - it.ts_pub)
        if n:
            self._kick()
            self.c.inc(Counter.PUBLISHED, n)
            self.c.inc(Counter.PUBLISHED_BYTES, nbytes)
        self.c.set(Counter.BUFFERED, len(self.pending))

    def _publish_durable(self, p: Pending, now: int) -> None:
        nc = self.nc
        assert nc is not None
        self._token += 1
        tok = str(self._token)
        if p.token:
            self._by_token.pop(p.token, None)
        p.token = tok
        p.sent_ns = now
        self._by_token[tok] = p.item.msg_id
        it = p.item
        nc._pending.append(_hpub(it.subject, f"{self._ack_prefix}.{tok}", it.msg_id, it.payload))  # noqa: SLF001
        nc._pending_data_size += len(it.payload) + 128  # noqa: SLF001

    def _kick(self) -> None:
        """Wake nats-py's flusher for what ``send`` appended to its pending buffer: the frames
        nats-py would build, one wake-up per batch instead of a coroutine per message
        (docs/decisions/032-nats-bridge.md)."""
        nc = self.nc
        if nc is None or not nc.is_connected:
            return
        q = nc._flush_queue  # noqa: SLF001
        if q is not None and q.empty():
            fut: asyncio.Future = asyncio.get_running_loop().create_future()
            try:
                q.put_nowait(fut)
            except asyncio.QueueFull:
                pass

    def resend(self, all_of_them: bool = False) -> int:
        """Send again the durable messages not acknowledged within ``ack_timeout_s`` (every one
        held, after a reconnect); returns how many."""
        if not self.up or not self.pending or (self.jetstream and not self._streams_tried):
            return 0
        now = time.monotonic_ns()
        limit = int(self.cfg.ack_timeout_s * 1e9)
        n = again = 0
        for p in self.pending.values():
            if all_of_them or p.sent_ns == 0 or now - p.sent_ns >= limit:
                again += p.sent_ns != 0
                self._publish_durable(p, now)
                n += 1
        if n:
            self.c.inc(Counter.RESENT, again)
            self._kick()
        return n

    async def _on_ack(self, msg: Any) -> None:
        tok = msg.subject.rsplit(".", 1)[-1]
        mid = self._by_token.pop(tok, None)
        if mid is None:
            return  # the answer to an earlier send of a message acknowledged since
        p = self.pending.get(mid)
        if not msg.data:  # a status message (503 no responders): no stream takes the subject (yet)
            log.once("jetstream_no_stream", "warn", "jetstream_no_stream", subject=p.item.subject if p else "",
                     status=(msg.headers or {}).get("Status", ""), detail="kept; sent again until a stream stores it")
            if p is not None:
                p.sent_ns = 1
            return
        try:
            ack = json.loads(msg.data)
        except ValueError:
            ack = {"error": {"description": f"not JSON: {msg.data[:80]!r}"}}
        if "error" in ack:
            self.c.inc(Counter.ACK_ERRORS)
            err = ack["error"]
            log.once(f"jetstream_refused:{err.get('err_code', '')}", "warn", "jetstream_refused", msg_id=mid, error=err)
            if p is not None:
                p.sent_ns = 1  # sent again at the next resend
            return
        if p is None:
            return
        del self.pending[mid]
        self.c.inc(Counter.ACKED)
        self.c.record(Hist.ACK, time.monotonic_ns() - p.sent_ns)
        self.c.set(Counter.BUFFERED, len(self.pending))

    # -- cursors ----------------------------------------------------------------------------------
    def lag_ns(self, now_ns: int | None = None) -> int:
        """Age of the oldest durable message still waiting for its acknowledgement (0 = none)."""
        for p in self.pending.values():
            if p.sent_ns > 1:
                return (time.monotonic_ns() if now_ns is None else now_ns) - p.sent_ns
            return 0
        return 0

    def cursors(self, rings: list[Any]) -> dict[str, list[int]]:
        """Per durable ring: [incarnation, first sequence not acknowledged yet]."""
        low: dict[str, list[int]] = {}
        for p in self.pending.values():
            it = p.item
            if it.durable not in low:
                low[it.durable] = [it.created_ns, it.seq]
        for r in rings:
            if r.name not in low and r.created_ns:
                low[r.name] = [r.created_ns, r.next]
        return low

    def save_cursors(self, rings: list[Any]) -> None:
        """Write the cursor file when it changed (atomically: a crash leaves the old one)."""
        if self.cursor_file is None or not self.jetstream:
            return
        cur = self.cursors(rings)
        if cur == self._cursors_saved:
            return
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cursor_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cur))
        os.replace(tmp, self.cursor_file)
        self._cursors_saved = cur

    async def close(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.flush(timeout=1), 2)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            try:
                await asyncio.wait_for(self.nc.close(), 3)
            except Exception:  # noqa: BLE001
                pass
        self._set_state(DOWN)


def load_cursors(path: Path) -> dict[str, list[int]]:
    """The cursor file's {ring: [incarnation, next sequence]} ({} when absent or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [int(v[0]), int(v[1])] for k, v in data.items()
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v)}


def _pub(subject: str, payload: bytes) -> bytes:
    return b"".join((b"PUB ", subject.encode(), b" ", str(len(payload)).encode(), b"\r\n", payload, b"\r\n"))


def _hpub(subject: str, reply: str, msg_id: str, payload: bytes) -> bytes:
    hdr = b"NATS/1.0\r\nNats-Msg-Id: " + msg_id.encode() + b"\r\n\r\n"
    return b"".join((b"HPUB ", subject.encode(), b" ", reply.encode(), b" ", str(len(hdr)).encode(), b" ",
                     str(len(hdr) + len(payload)).encode(), b"\r\n", hdr, payload, b"\r\n"))

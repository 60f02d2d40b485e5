"""Delivery: de-duplication, per-route rate limits, and one courier thread per URL that sends
through apprise with retries and back-off.

A courier owns its URL's queue and retry schedule, so a dead or slow endpoint holds back only
the alerts bound for it: nothing else waits for it, and the reader of the rings never does
(it only appends to queues). Every outcome is counted (``Outcome``), timed (raise -> delivered,
and each attempt) and written as one JSON line to the delivery log.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import msgspec

from procs.core import log
from procs.core import messages as M
from procs.core.config import ConfigError

from .config import LEVELS, AlertsConfig, Route
from .sources import Alert


class Outcome(IntEnum):
    """The notifier's counters (labels are the lower-case names)."""

    ALERTS_SEEN = 0
    DELIVERIES = 1  # a URL took an alert
    DELIVERY_ATTEMPTS = 2
    DELIVERY_RETRIES = 3  # attempts that failed and were scheduled again
    DELIVERY_FAILURES = 4  # alerts a URL never took, after every retry
    DELIVERIES_DEDUPLICATED = 5
    DELIVERIES_RATE_LIMITED = 6
    DELIVERIES_DROPPED = 7  # a URL's queue was full
    ALERTS_UNROUTED = 8  # no route wanted it


class Stage(IntEnum):
    RAISE_TO_DELIVERED = 0  # the alert's own time -> a URL took it (wall clocks)
    DELIVERY_ATTEMPT = 1  # one apprise call


Send = Callable[[str, str, str], bool]  # (title, body, notify type) -> taken


class Metrics:
    """Counters and histograms shared by the threads (a lock: read-modify-write of shm slots)."""

    def __init__(self, counters: Any | None) -> None:
        self.counters = counters
        self._lock = threading.Lock()

    def inc(self, what: Outcome, n: int = 1) -> None:
        if self.counters is not None:
            with self._lock:
                self.counters.inc(what, n)

    def record(self, stage: Stage, ns: int) -> None:
        if self.counters is not None:
            with self._lock:
                self.counters.record(stage, max(ns, 0))


class DeliveryLog:
    """One JSON line per outcome: time, alert, route, URL (secrets hidden), attempt, outcome."""

    def __init__(self, path: str) -> None:
        self._file = None
        if path:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(p, "ab", buffering=0)  # noqa: SIM115 - kept open for the process's life
        self._lock = threading.Lock()
        self._enc = msgspec.json.Encoder()

    def write(self, outcome: str, alert: Alert, **fields: Any) -> None:
        rec = {"ts": round(time.time(), 6), "outcome": outcome, "source": alert.source, "level": alert.level_name,
               "code": alert.code, "symbol": alert.symbol, "text": alert.text,
               "raised": round(alert.raised_ns / 1e9, 6), **fields}
        if self._file is not None:
            with self._lock:
                self._file.write(self._enc.encode(rec) + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def render(alert: Alert, instance: str) -> tuple[str, str, str]:
    """(title, body, apprise notify type) of an alert."""
    title = f"b25 {instance} {alert.level_name.upper()}: {alert.source} {alert.code}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(alert.raised_ns / 1e9))
    body = f"{alert.text}\n{alert.source} {alert.code}" + (f" {alert.symbol}" if alert.symbol else "") + \
        (f" value={alert.value:g}" if alert.value else "") + f" at {when}.{alert.raised_ns // 1_000_000 % 1000:03d} UTC"
    kind = {M.ALERT_CRITICAL: "failure", M.ALERT_WARN: "warning"}.get(alert.level, "info")
    return title, body, kind


def apprise_sender(url: str, timeout_s: float) -> tuple[Send, str]:
    """A send function for one apprise URL, and the URL with its secrets hidden; ValueError if apprise
    does not know the URL."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise ValueError(f"not an apprise URL apprise can use (scheme {url.split('://', 1)[0]!r})")
    plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout_s

    def send(title: str, body: str, kind: str) -> bool:
        return bool(plugin.notify(body=body, title=title, notify_type=apprise.NotifyType(kind)))

    return send, plugin.url(privacy=True)


def check_routes(cfg: AlertsConfig, where: str) -> None:
    """Every URL of every route is one apprise can use; ConfigError names the route and the URL's place."""
    for i, route in enumerate(cfg.routes):
        for j, url in enumerate(route.urls):
            try:
                apprise_sender(url, cfg.timeout_s)
            except ValueError as exc:
                raise ConfigError(f"invalid config {where} section [alerts]: routes[{i}].urls[{j}]: {exc}") from None


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    alert: Alert = field(compare=False)
    attempt: int = field(compare=False, default=0)


class Courier:
    """The thread that owns one URL: a queue of alerts, each sent until taken or out of retries."""

    def __init__(self, url: str, send: Send, shown: str, route: str, cfg: AlertsConfig, instance: str,
                 metrics: Metrics, dlog: DeliveryLog) -> None:
        self.url = url
        self.shown = shown
        self.route = route
        self.send = send
        self.cfg = cfg
        self.instance = instance
        self.metrics = metrics
        self.dlog = dlog
        self._heap: list[_Pending] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self.thread = threading.Thread(target=self._run, name=f"courier-{route}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, alert: Alert) -> None:
        """Queue an alert (never blocks). Urgent alerts go ahead of waiting retries."""
        with self._cond:
            if len(self._heap) >= self.cfg.queue_max:
                victim = next((p for p in sorted(self._heap) if not p.alert.urgent), None) or min(self._heap)
                self._heap.remove(victim)
                heapq.heapify(self._heap)
                self.metrics.inc(Outcome.DELIVERIES_DROPPED)
                self.dlog.write("dropped", victim.alert, route=self.route, url=self.shown,
                                reason=f"queue full ([alerts] queue_max={self.cfg.queue_max})")
            now = time.monotonic()
            heapq.heappush(self._heap, _Pending(now - 1e6 if alert.urgent else now, next(self._seq), alert))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self.thread.join(timeout)

    def _next(self) -> _Pending | None:
        with self._cond:
            while not self._stop:
                if self._heap and self._heap[0].due <= time.monotonic():
                    return heapq.heappop(self._heap)
                wait = self._heap[0].due - time.monotonic() if self._heap else None
                self._cond.wait(wait)
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            self._attempt(item)

    def _attempt(self, item: _Pending) -> None:
        alert = item.alert
        title, body, kind = render(alert, self.instance)
        t0 = time.monotonic_ns()
        try:
            ok = self.send(title, body, kind)
            error = "" if ok else "the endpoint did not take it"
        except Exception as exc:  # a plugin's own failure must not end the courier
            ok, error = False, repr(exc)
        took = time.monotonic_ns() - t0
        self.metrics.inc(Outcome.DELIVERY_ATTEMPTS)
        self.metrics.record(Stage.DELIVERY_ATTEMPT, took)
        attempt = item.attempt + 1
        if ok:
            self.metrics.inc(Outcome.DELIVERIES)
            delay_ns = time.time_ns() - alert.raised_ns
            self.metrics.record(Stage.RAISE_TO_DELIVERED, delay_ns)
            self.dlog.write("delivered", alert, route=self.route, url=self.shown, attempt=attempt,
                            attempt_ms=round(took / 1e6, 3), raise_to_delivered_ms=round(delay_ns / 1e6, 3))
            return
        if item.attempt >= self.cfg.retries:
            self.metrics.inc(Outcome.DELIVERY_FAILURES)
            self.dlog.write("failed", alert, route=self.route, url=self.shown, attempt=attempt, error=error)
            log.warn("delivery_failed", route=self.route, url=self.shown, code=alert.code, attempts=attempt, error=error)
            return
        backoff = min(self.cfg.backoff_s * 2 ** item.attempt, self.cfg.backoff_max_s)
        self.metrics.inc(Outcome.DELIVERY_RETRIES)
        self.dlog.write("retry", alert, route=self.route, url=self.shown, attempt=attempt, error=error,
                        retry_in_s=backoff)
        with self._cond:
            heapq.heappush(self._heap, _Pending(time.monotonic() + backoff, next(self._seq), alert, attempt))


class RateLimit:
    """A token bucket of ``per_minute`` tokens, refilled continuously."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.last = now
        self.held: list[Alert] = []  # alerts it refused since it last let one through

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = max(self.last, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Dispatcher:
    """Routes alerts: de-duplication over the window, then each route's level and codes, its rate
    limit (urgent alerts pass; the others it refuses are summed up in one alert once it refills),
    then every URL's courier."""

    def __init__(self, cfg: AlertsConfig, instance: str, metrics: Metrics, dlog: DeliveryLog,
                 sender: Callable[[str, float], tuple[Send, str]] = apprise_sender) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.dlog = dlog
        self.instance = instance
        self.routes: list[tuple[str, Route, RateLimit, list[Courier]]] = []
        now = time.monotonic()
        for i, route in enumerate(cfg.routes):
            name = route.name or f"route{i}"
            couriers = []
            for url in route.urls:
                send, shown = sender(url, cfg.timeout_s)
                couriers.append(Courier(url, send, shown, name, cfg, instance, metrics, dlog))
            self.routes.append((name, route, RateLimit(cfg.rate_per_minute, now), couriers))
        self._last_sent: dict[tuple[str, str, str, str], float] = {}

    def start(self) -> None:
        for *_, couriers in self.routes:
            for c in couriers:
                c.start()

    def stop(self, timeout: float = 5.0) -> None:
        for *_, couriers in self.routes:
            for c in couriers:
                c.stop(timeout)

    def retire(self, timeout: float) -> threading.Thread:
        """Stop once every courier's queue is empty (what it holds still goes out, retries
        included), or after ``timeout``: the routes a reload replaced."""
        def drain() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(c._heap for c in self.couriers()):
                time.sleep(0.05)
            self.stop(1.0)

        t = threading.Thread(target=drain, name="notifier-retire", daemon=True)
        t.start()
        return t

    def keep_dedup(self, old: Dispatcher) -> None:
        """Take ``old``'s de-duplication memory (a reload must not resend what just went out)."""
        self._last_sent = dict(old._last_sent)

    def couriers(self) -> list[Courier]:
        return [c for *_, couriers in self.routes for c in couriers]

    def dispatch(self, alert: Alert, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.metrics.inc(Outcome.ALERTS_SEEN)
        last = self._last_sent.get(alert.key)
        if last is not None and now - last < self.cfg.dedup_window_s:
            self.metrics.inc(Outcome.DELIVERIES_DEDUPLICATED)
            self.dlog.write("deduplicated", alert, window_s=self.cfg.dedup_window_s)
            return
        self._last_sent[alert.key] = now
        if len(self._last_sent) > 10_000:  # forget what is past the window
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.cfg.dedup_window_s}
        routed = False
        for name, route, limit, couriers in self.routes:
            if not self.wants(route, alert):
                continue
            routed = True
            if not alert.urgent and not limit.take(now):
                limit.held.append(alert)
                self.metrics.inc(Outcome.DELIVERIES_RATE_LIMITED)
                self.dlog.write("rate_limited", alert, route=name, per_minute=self.cfg.rate_per_minute)
                continue
            for c in couriers:
                c.put(alert)
        if not routed:
            self.metrics.inc(Outcome.ALERTS_UNROUTED)
            self.dlog.write("unrouted", alert)

    def flush_held(self, now: float | None = None) -> None:
        """Once a route's bucket has a token again, one alert that sums up what it refused."""
        now = time.monotonic() if now is None else now
        for _name, _route, limit, couriers in self.routes:
            if limit.held and limit.take(now):
                held, limit.held = limit.held, []
                codes = sorted({f"{a.source}.{a.code}" for a in held})
                summary = Alert("notifier", max(a.level for a in held), "rate_limited",
                                f"{len(held)} alerts held back by [alerts] rate_per_minute={self.cfg.rate_per_minute}: "
                                f"{', '.join(codes)[:400]}", raised_ns=held[0].raised_ns)
                for c in couriers:
                    c.put(summary)

    @staticmethod
    def wants(route: Route, alert: Alert) -> bool:
        if alert.level < LEVELS[route.min_level]:
            return False
        return not route.codes or alert.code in route.codes or f"{alert.source}.{alert.code}" in route.codes

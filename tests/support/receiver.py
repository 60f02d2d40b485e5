"""A local HTTP receiver for webhook tests: records every request (monotonic time, path, JSON
body) and answers with ``status`` (settable while it runs, e.g. 500 to make a sender retry)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    at: float  # time.monotonic() when the body was read
    path: str
    body: Any  # the decoded JSON, or the raw text when it is not JSON
    status: int  # what the receiver answered


class Receiver:
    """``with Receiver() as r: ... r.url ... r.wait_for(lambda got: ..., "what")``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                status = outer.status
                with outer._lock:
                    outer.received.append(Received(time.monotonic(), self.path, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, match: Any, what: str, timeout: float = 30.0) -> list[Received]:
        """Until ``match(received_list)`` is truthy; returns the matching requests' list."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.snapshot() if match(r)]
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {self.snapshot()!r:.2000}")
            time.sleep(0.02)

"""A real HTTP webhook receiver on 127.0.0.1 for tests, scriptable per request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float
    path: str = ""

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict[str, Any]]:
        return self.json().get("data", {}).get("events", [])


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """Answers each POST with ``script.pop(0)`` while the script lasts, then ``default``.
    ``respond`` (if set) decides instead. Every request is kept in ``received``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply(200)
        self.respond: Callable[[dict[str, str], bytes], Reply] | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-request-path"] = self.path
                with receiver.lock:
                    if receiver.respond is not None:
                        reply = receiver.respond(headers, body)
                    elif receiver.script:
                        reply = receiver.script.pop(0)
                    else:
                        reply = receiver.default
                    receiver.received.append(
                        Received(headers, body, reply.status, time.time(), self.path)
                    )
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- views of what arrived ---------------------------------------------------------------
    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def accepted_events(self, secret: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(webhook-id, event) for every event of every 2xx-answered request; with ``secret``,
        each request's signature is verified with the standardwebhooks library first."""
        out = []
        for r in self.accepted():
            if secret is not None:
                Webhook(secret).verify(r.body, r.headers)
            out.extend((r.webhook_id, e) for e in r.events())
        return out

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(
            f"timed out after {timeout} s; received {len(self.received)} requests "
            f"({[r.status for r in self.received]})"
        )

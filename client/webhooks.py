"""Verify Beacon's Standard Webhooks deliveries, and a tiny receiver for local testing.

Beacon signs every delivery as Standard Webhooks 1.0 specifies: ``webhook-id`` (stable across
retries), ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"`` with the subscription's ``whsec_`` secret. During a secret
rotation the header carries two signatures; either one verifies.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "Delivery",
    "WebhookReceiver",
    "WebhookVerificationError",
    "verify_webhook",
]

DEFAULT_TOLERANCE = 300


def verify_webhook(
    secrets: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int | None = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Any:
    """Check a delivery's signature and timestamp; return the parsed JSON body.

    ``secrets`` may list several ``whsec_`` secrets (old and new during a rotation).
    ``tolerance`` is how far (seconds) the timestamp may be from ``now``; ``None`` skips the
    timestamp check, for verifying a captured request after the fact. Raises
    :class:`WebhookVerificationError` when nothing verifies.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise WebhookVerificationError(
            "missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if tolerance is not None:
        current = time.time() if now is None else now
        if sent_at < current - tolerance:
            raise WebhookVerificationError("the timestamp is too old (replayed request?)")
        if sent_at > current + tolerance:
            raise WebhookVerificationError("the timestamp is too far in the future")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    when = datetime.fromtimestamp(int(sent_at), tz=UTC)
    offered = {
        part.split(",", 1)[1]
        for part in signatures.split()
        if part.startswith("v1,") and "," in part
    }
    for secret in [secrets] if isinstance(secrets, str) else secrets:
        expected = Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=text).split(",", 1)[1]
        if any(_same(expected, candidate) for candidate in offered):
            return json.loads(text)
    raise WebhookVerificationError("no signature matches the secret")


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class Delivery:
    """One received request, as the receiver stores it."""

    webhook_id: str
    headers: dict[str, str]
    body: str
    verified: bool
    error: str | None
    received_at: float
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "verified": self.verified,
            "error": self.error,
            "duplicate": self.duplicate,
            "received_at": self.received_at,
            "headers": self.headers,
            "body": self.body,
        }

    @property
    def events(self) -> list[dict[str, Any]]:
        try:
            payload = json.loads(self.body)
        except ValueError:
            return []
        data = payload.get("data") if isinstance(payload, dict) else None
        events = data.get("events") if isinstance(data, dict) else None
        return list(events) if isinstance(events, list) else []


@dataclass
class WebhookReceiver:
    """A local HTTP receiver that verifies and records deliveries (for testing, not production).

    Verified deliveries answer 204; bad signatures 401. A retried delivery (same
    ``webhook-id``) is acknowledged again but recorded once. ``out`` appends each delivery as
    one JSON line.
    """

    secrets: list[str]
    host: str = "127.0.0.1"
    port: int = 0
    out: Path | None = None
    tolerance: int | None = DEFAULT_TOLERANCE
    on_delivery: Callable[[Delivery], None] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def handle(self, headers: Mapping[str, str], body: bytes) -> int:
        """Verify and record one request; the HTTP status to answer."""
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id = lowered.get("webhook-id", "")
        try:
            verify_webhook(self.secrets, lowered, body, tolerance=self.tolerance)
            verified, error = True, None
        except (WebhookVerificationError, ValueError) as exc:
            verified, error = False, str(exc)
        with self._lock:
            duplicate = verified and any(
                d.verified and d.webhook_id == webhook_id for d in self.deliveries
            )
            delivery = Delivery(
                webhook_id=webhook_id,
                headers={
                    k: v
                    for k, v in lowered.items()
                    if k.startswith("webhook-") or k == "content-type"
                },
                body=body.decode("utf-8", "replace"),
                verified=verified,
                error=error,
                received_at=time.time(),
                duplicate=duplicate,
            )
            self.deliveries.append(delivery)
            if self.out is not None:
                with self.out.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(delivery.as_dict(), ensure_ascii=False) + "\n")
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        return 204 if verified else 401

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver.handle(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="beacon-webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        if self._thread is None:
            self.start()
        assert self._thread is not None
        self._thread.join()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def verified_events(self) -> list[dict[str, Any]]:
        """Events of verified, non-duplicate deliveries, in arrival order."""
        with self._lock:
            return [e for d in self.deliveries if d.verified and not d.duplicate for e in d.events]

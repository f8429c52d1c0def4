"""Posting one webhook: the HTTP side only (no database).

Redirects are never followed (a 3xx is a failed attempt), the connection goes only to an
address the SSRF guard approved, every phase has a timeout, and at most a few KiB of the
answer are read.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
from django.conf import settings

from exchange.delivery import ssrf

USER_AGENT = "Beacon-Webhooks/1.0"
_MAX_ANSWER_BYTES = 4096


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the SSRF guard approved, and to nothing else, so a DNS
    answer that changes after the check cannot point the sender at an internal address."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = ssrf.safe_addresses(host, port)
        except ssrf.UnsafeUrl as exc:
            raise httpcore.ConnectError(f"refused by the SSRF guard: {exc}") from exc
        last: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"could not connect to {host}")


_pool: httpcore.ConnectionPool | None = None


def _connection_pool() -> httpcore.ConnectionPool:
    global _pool
    if _pool is None:
        _pool = httpcore.ConnectionPool(
            max_connections=32,
            keepalive_expiry=30,
            network_backend=_GuardedBackend(),
        )
    return _pool


def reset_pool() -> None:
    """Drop kept-alive connections (after a fork, or when settings change in tests)."""
    global _pool
    if _pool is not None:
        _pool.close()
    _pool = None


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    gone: bool = False


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC).timestamp()
    return max(0.0, when.timestamp() - current)


def post(*, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST ``body`` to ``url`` once. Never raises for network trouble: it is a result."""
    try:
        ssrf.check(url)
    except ssrf.UnsafeUrl as exc:
        return SendResult(ok=False, error=f"refused by the SSRF guard: {exc}")
    timeout = float(settings.BEACON_WEBHOOK_TIMEOUT_SECONDS)
    request_headers = [
        (b"Content-Type", b"application/json"),
        (b"User-Agent", USER_AGENT.encode()),
        *((k.encode(), v.encode()) for k, v in headers.items()),
    ]
    deadline = time.monotonic() + timeout
    try:
        with _connection_pool().stream(
            "POST",
            url,
            headers=request_headers,
            content=body,
            extensions={
                "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
            },
        ) as response:
            received = 0
            for chunk in response.iter_stream():
                received += len(chunk)
                if received > _MAX_ANSWER_BYTES or time.monotonic() > deadline:
                    break
            status = response.status
            answer_headers = {k.decode().lower(): v.decode() for k, v in response.headers}
    except httpcore.TimeoutException as exc:
        return SendResult(ok=False, error=f"timed out after {timeout:g} s ({type(exc).__name__})")
    except httpcore.ConnectError as exc:
        return SendResult(ok=False, error=f"connection failed: {exc}"[:500])
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return SendResult(ok=True, status_code=status)
    retry_after = parse_retry_after(answer_headers.get("retry-after"))
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed"
    else:
        error = f"HTTP {status}"
    return SendResult(
        ok=False, status_code=status, error=error, retry_after=retry_after, gone=status == 410
    )

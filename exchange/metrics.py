"""Prometheus metrics at ``/metrics``, in the text exposition format.

Two kinds of figures (docs/decisions/1201-metrics.md):

- **Counters** kept in Redis (one hash per family), so every gunicorn worker and Celery worker
  on every host adds to the same totals and any web process can answer a scrape: API requests
  by endpoint, method and status; request latency as a histogram; values matched; webhook
  delivery attempts by outcome. On the embedded back end they
  are per process.
- **Gauges** read from the database at scrape time: outbox backlog, deliveries by status, the
  audit chain head and the events since the last signed checkpoint.

Counting never fails a request: if Redis is down the figure is lost, not the request.
The endpoint answers the scraper's ``Authorization: Bearer $BEACON_METRICS_TOKEN`` or a staff
session, and 404 to anyone else (no existence oracle). Scrapes are not audited: they disclose
no signal and would flood the log every few seconds.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REQUESTS = "beacon:metrics:requests"
_LATENCY = "beacon:metrics:latency"
_COUNTERS = "beacon:metrics:counters"

_local: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_local_lock = threading.Lock()
_client: Any = None


def redis_client() -> Any:
    """The process's Redis client for figures shared between processes (these counters, the
    request quotas and the match-volume counters), with short timeouts; ``None`` on the
    embedded back end."""
    global _client
    if not settings.REDIS_URL:
        return None
    if _client is None:
        import redis

        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
        )
    return _client


def _queue(pipe: Any, increments: Iterable[tuple[str, str, float]]) -> None:
    for family, field, amount in increments:
        if float(amount).is_integer():
            pipe.hincrby(family, field, int(amount))
        else:
            pipe.hincrbyfloat(family, field, amount)


def _add(increments: Iterable[tuple[str, str, float]]) -> None:
    """Add ``(hash, field, amount)`` increments to the shared counters."""
    client = redis_client()
    if client is None:
        with _local_lock:
            for family, field, amount in increments:
                _local[family][field] += amount
        return
    try:
        pipe = client.pipeline(transaction=False)
        _queue(pipe, increments)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - a lost figure never fails a request
        logger.debug("metrics not recorded: %s", type(exc).__name__)


def _read(family: str) -> dict[str, float]:
    client = redis_client()
    if client is None:
        with _local_lock:
            return dict(_local[family])
    try:
        raw = client.hgetall(family)
    except Exception:  # noqa: BLE001
        return {}
    return {k.decode(): float(v) for k, v in raw.items()}


def reset() -> None:
    """Forget every counter (tests)."""
    client = redis_client()
    if client is not None:
        client.delete(_REQUESTS, _LATENCY, _COUNTERS)
    with _local_lock:
        _local.clear()


def count(**amounts: float) -> None:
    """Add to plain counters (names in ``COUNTERS``), exposed as ``beacon_<name>_total``."""
    _add([(_COUNTERS, name, amount) for name, amount in amounts.items()])


def count_in(pipe: Any, **amounts: float) -> None:
    """``count`` queued on a pipeline of ``redis_client()`` that the caller runs with its own
    commands, saving a round trip."""
    _queue(pipe, [(_COUNTERS, name, amount) for name, amount in amounts.items()])


def count_outcome(name: str, outcome: str) -> None:
    """Add one to a counter by outcome (names in ``OUTCOME_COUNTERS``), exposed as
    ``beacon_<name>_total{outcome="..."}``."""
    _add([(_COUNTERS, f"{name}|{outcome}", 1)])


def observe_request(*, endpoint: str, method: str, status: int, seconds: float) -> None:
    key = f"{endpoint}|{method}|{status}"
    increments: list[tuple[str, str, float]] = [(_REQUESTS, key, 1)]
    bucket = next((b for b in BUCKETS if seconds <= b), None)
    increments.append((_LATENCY, f"{endpoint}|{bucket if bucket is not None else '+Inf'}", 1))
    increments.append((_LATENCY, f"{endpoint}|sum", seconds))
    increments.append((_LATENCY, f"{endpoint}|count", 1))
    _add(increments)


def endpoint_of(request: HttpRequest) -> str:
    """A route's name (``signals-match``) or its pattern; never the raw path, whose ids would
    make one series per object."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    if match.url_name:
        return str(match.url_name)
    return str(match.route or "unmatched")


class MetricsMiddleware:
    """Counts every API request by endpoint, method and status, with its latency."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from exchange.middleware import is_api

        started = time.perf_counter()
        response = self.get_response(request)
        if is_api(request):
            observe_request(
                endpoint=endpoint_of(request),
                method=request.method or "",
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
        return response


# -- exposition -----------------------------------------------------------------------------
def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _gauges() -> list[str]:
    from exchange.audit.models import AuditCheckpoint, ChainHead
    from exchange.delivery.models import Delivery, DeliveryStatus, OutboxEntry

    lines = [
        "# HELP beacon_outbox_backlog Outbox entries not yet fanned out.",
        "# TYPE beacon_outbox_backlog gauge",
        f"beacon_outbox_backlog {OutboxEntry.objects.filter(processed_at__isnull=True).count()}",
        "# HELP beacon_deliveries Webhook deliveries by status (outcomes of delivery).",
        "# TYPE beacon_deliveries gauge",
    ]
    by_status = dict(
        Delivery.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    for status in DeliveryStatus.values:
        lines.append(f'beacon_deliveries{{status="{status}"}} {by_status.get(status, 0)}')
    head = ChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    last_checkpoint = (
        AuditCheckpoint.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    )
    lines += [
        "# HELP beacon_audit_chain_head_seq Sequence number of the last audit event.",
        "# TYPE beacon_audit_chain_head_seq gauge",
        f"beacon_audit_chain_head_seq {head}",
        "# HELP beacon_audit_checkpoint_lag_events Audit events since the last signed checkpoint.",
        "# TYPE beacon_audit_checkpoint_lag_events gauge",
        f"beacon_audit_checkpoint_lag_events {max(head - last_checkpoint, 0)}",
    ]
    return lines


def render() -> str:
    lines = [
        "# HELP beacon_http_requests_total API requests by endpoint, method and status.",
        "# TYPE beacon_http_requests_total counter",
    ]
    for key, value in sorted(_read(_REQUESTS).items()):
        endpoint, method, status = key.split("|")
        lines.append(
            f'beacon_http_requests_total{{endpoint="{_label(endpoint)}",method="{_label(method)}",'
            f'status="{_label(status)}"}} {_fmt(value)}'
        )
    lines += [
        "# HELP beacon_http_request_duration_seconds API request latency by endpoint.",
        "# TYPE beacon_http_request_duration_seconds histogram",
    ]
    latency: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in _read(_LATENCY).items():
        endpoint, part = key.rsplit("|", 1)
        latency[endpoint][part] = value
    for endpoint, parts in sorted(latency.items()):
        name = _label(endpoint)
        cumulative = 0.0
        for bound in BUCKETS:
            cumulative += parts.get(str(bound), 0)
            lines.append(
                f'beacon_http_request_duration_seconds_bucket{{endpoint="{name}",le="{bound}"}} {_fmt(cumulative)}'
            )
        cumulative += parts.get("+Inf", 0)
        lines.append(
            f'beacon_http_request_duration_seconds_bucket{{endpoint="{name}",le="+Inf"}} {_fmt(cumulative)}'
        )
        lines.append(
            f'beacon_http_request_duration_seconds_sum{{endpoint="{name}"}} {_fmt(parts.get("sum", 0))}'
        )
        lines.append(
            f'beacon_http_request_duration_seconds_count{{endpoint="{name}"}} {_fmt(parts.get("count", 0))}'
        )
    counters = _read(_COUNTERS)
    for name, help_text in COUNTERS.items():
        lines += [
            f"# HELP beacon_{name}_total {help_text}",
            f"# TYPE beacon_{name}_total counter",
            f"beacon_{name}_total {_fmt(counters.get(name, 0))}",
        ]
    for name, help_text in OUTCOME_COUNTERS.items():
        lines += [f"# HELP beacon_{name}_total {help_text}", f"# TYPE beacon_{name}_total counter"]
        for key, value in sorted(counters.items()):
            family, _, outcome = key.partition("|")
            if family == name and outcome:
                lines.append(f'beacon_{name}_total{{outcome="{_label(outcome)}"}} {_fmt(value)}')
    lines += _gauges()
    return "\n".join(lines) + "\n"


COUNTERS = {
    "match_values": "Values members asked to match.",
    "match_requests": "Bulk match requests answered.",
}
OUTCOME_COUNTERS = {
    "delivery_attempts": "Webhook delivery attempts by outcome (succeeded, pending = will retry, "
    "dead, cancelled, skipped).",
}


def _authorised(request: HttpRequest) -> bool:
    expected = settings.BEACON_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if expected and scheme.lower() == "bearer" and presented:
        return hmac.compare_digest(presented.strip().encode(), expected.encode())
    user = getattr(request, "user", None)
    if user is None or not (user.is_authenticated and user.is_staff):
        return False
    # Staff must have passed the second factor (django-otp), as for the admin.
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified()) if callable(is_verified) else False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the scraper's token or a staff session; 404 to anyone else."""
    if request.method != "GET" or not _authorised(request):
        raise Http404
    return HttpResponse(render(), content_type=CONTENT_TYPE)

"""Watch each member's bulk-match volume: matching is a membership-inference oracle.

A member (or a stolen token) that suddenly matches far more values than it usually does may be
enumerating candidates to learn who is in the exchange. The request throttles cap the rate; this
module raises an alert when a member's matched values in the current hour pass both a floor
(``BEACON_MATCH_ALERT_MIN_VALUES``) and ``BEACON_MATCH_ALERT_FACTOR`` times its hourly average
over the previous 24 hours. The alert is an audit event (``match.volume_alert``, actor the
exchange, target the member) and a WARNING log line, once per member and hour.

Counters live in Redis in production, so every web process adds to the same figures: a match
request counts itself, adds its values and reads the last day's figures in one round trip. The
embedded back end keeps them in Django's cache. Losing them (Redis flushed) only delays an
alert; it never refuses a request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

from exchange import audit, metrics
from exchange.audit import Actor

logger = logging.getLogger("beacon.security")

ALERT_ACTION = "match.volume_alert"
HISTORY_HOURS = 24
_KEEP_SECONDS = (HISTORY_HOURS + 2) * 3600


def _key(member_id: int, hour: int) -> str:
    return f"beacon:matchvol:{member_id}:{hour}"


def _add(key: str, amount: int) -> int:
    if cache.add(key, amount, _KEEP_SECONDS):
        return amount
    try:
        return int(cache.incr(key, amount))
    except ValueError:  # expired between add and incr
        cache.set(key, amount, _KEEP_SECONDS)
        return amount


def _count(member_id: int, hour: int, values: int) -> tuple[int, list[int]]:
    """Count the request in the metrics and add ``values`` to the member's figure for this
    hour; return that figure and those of the previous 24 hours."""
    keys = [_key(member_id, hour - i) for i in range(HISTORY_HOURS + 1)]
    client = metrics.redis_client()
    if client is None:
        metrics.count(match_requests=1, match_values=values)
        found = cache.get_many(keys[1:])
        return _add(keys[0], values), [int(found.get(k) or 0) for k in keys[1:]]
    pipe = client.pipeline(transaction=False)
    metrics.count_in(pipe, match_requests=1, match_values=values)
    pipe.incrby(keys[0], values)
    pipe.expire(keys[0], _KEEP_SECONDS)
    pipe.mget(keys[1:])
    *_, current, _, history = pipe.execute()
    return int(current), [int(v or 0) for v in history]


def _first_alert(member_id: int, hour: int) -> bool:
    """Whether this is the member's first alert of the hour (and mark it raised)."""
    key, ttl = f"beacon:matchvol-alerted:{member_id}:{hour}", 2 * 3600
    client = metrics.redis_client()
    if client is None:
        return bool(cache.add(key, 1, ttl))
    return bool(client.set(key, 1, nx=True, ex=ttl))


def threshold(history: list[int]) -> float:
    baseline = sum(history) / len(history) if history else 0.0
    return max(
        float(settings.BEACON_MATCH_ALERT_MIN_VALUES), settings.BEACON_MATCH_ALERT_FACTOR * baseline
    )


def match_volume_observe(
    *, member: Any, values: int, actor: Actor, now: float | None = None
) -> bool:
    """Count ``values`` matched by ``member`` and raise the alert when its volume jumps.

    Called by the match services after they have audited the match itself. Returns whether
    this call raised the alert."""
    if values <= 0 or member is None:
        metrics.count(match_requests=1, match_values=max(values, 0))
        return False
    hour = int((now or time.time()) // 3600)
    current, history = _count(member.pk, hour, values)
    limit = threshold(history)
    if current <= limit or not _first_alert(member.pk, hour):
        return False
    baseline = sum(history) / len(history)
    logger.warning(
        "match volume alert: member=%s values_this_hour=%d hourly_average=%.1f threshold=%.0f token=%s",
        member.slug,
        current,
        baseline,
        limit,
        actor.label,
    )
    audit.record(
        actor=Actor.system("match-volume"),
        action=ALERT_ACTION,
        target=f"member:{member.slug}",
        result_count=current,
        owners=[member.slug],
        details={
            "values_this_hour": current,
            "hourly_average": round(baseline, 1),
            "threshold": int(limit),
            "token": actor.label,
            "request_id": actor.request_id,
        },
    )
    return True

"""How signals leave the exchange: in API answers, feed events and webhook events alike.

Every signal is serialised by ``signal_out`` from a ``SignalRow``. Large reads (the feed, fan-out)
fetch rows with ``signal_rows`` — the columns only, owners and categories from per-call lookups,
no model instances — and single-signal answers build one with ``SignalRow.of``; either way the
same function writes the body, so a webhook event equals the feed event for the same change.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count

from accounts.models import Member
from signals import types
from signals.models import Category, Feedback, IndicatorFrames, Signal
from signals.querysets import ids_in


def feedback_totals(signal_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Reaction counts per signal: aggregates only, never which member reacted."""
    totals: dict[int, dict[str, int]] = defaultdict(dict)
    ids = list(signal_ids)
    # One array parameter on PostgreSQL; SQLite's limit on bound parameters wants chunks.
    step = max(len(ids), 1) if connection.vendor == "postgresql" else 5000
    for start in range(0, len(ids), step):
        counts = (
            Feedback.objects.filter(ids_in("signal_id", ids[start : start + step]))
            .values_list("signal_id", "reaction")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for signal_id, reaction, n in counts:
            totals[signal_id][reaction] = n
    return totals


class SignalRow(NamedTuple):
    """One signal as it leaves the exchange, with the facts the policy reads (``SignalLike``)."""

    pk: int
    seq: int
    indicator_id: int
    type: str
    value: str
    owner_id: int
    category_id: int
    tags: Sequence[str]
    confidence: int
    severity: str
    tlp: str
    status: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    bundle_id: uuid.UUID | None
    quality: int | None
    lang: str
    audience: str
    audience_kind: str
    audience_group_id: int | None
    audience_members: str
    external_id: str
    retracted_at: datetime | None
    retract_reason: str
    flagged_at: datetime | None
    # From the per-call lookups: the owner's slug and attribution, the category code, and a
    # video's frame list (``None`` for every other type).
    owner_slug: str
    owner_anonymous: bool
    category_code: str
    frames: str | None

    @classmethod
    def of(cls, signal: Signal) -> SignalRow:
        """The row of a loaded signal (its indicator, owner and category are read)."""
        indicator, owner = signal.indicator, signal.owner
        frames = None
        if _is_video(indicator.type):
            held = getattr(indicator, "frames", None)
            frames = held.text if held is not None else None
        return cls(
            pk=signal.pk,
            seq=signal.seq,
            indicator_id=signal.indicator_id,
            type=indicator.type,
            value=indicator.value,
            owner_id=signal.owner_id,
            category_id=signal.category_id,
            tags=tuple(signal.tags or ()),
            confidence=signal.confidence,
            severity=signal.severity,
            tlp=signal.tlp,
            status=signal.status,
            expires_at=signal.expires_at,
            created_at=signal.created_at,
            updated_at=signal.updated_at,
            bundle_id=signal.bundle_id,
            quality=signal.quality,
            lang=signal.lang,
            audience=signal.audience,
            audience_kind=signal.audience_kind,
            audience_group_id=signal.audience_group_id,
            audience_members=signal.audience_members,
            external_id=signal.external_id,
            retracted_at=signal.retracted_at,
            retract_reason=signal.retract_reason,
            flagged_at=signal.flagged_at,
            owner_slug=owner.slug,
            owner_anonymous=owner.attribution == "anonymous",
            category_code=signal.category.code,
            frames=frames,
        )


#: The ``Signal`` lookups behind the first fields of ``SignalRow``, in order.
_COLUMNS = (
    "pk",
    "seq",
    "indicator_id",
    "indicator__type",
    "indicator__value",
    "owner_id",
    "category_id",
    "tags",
    "confidence",
    "severity",
    "tlp",
    "status",
    "expires_at",
    "created_at",
    "updated_at",
    "bundle_id",
    "quality",
    "lang",
    "audience",
    "audience_kind",
    "audience_group_id",
    "audience_members",
    "external_id",
    "retracted_at",
    "retract_reason",
    "flagged_at",
)
_TAGS = _COLUMNS.index("tags")


def _is_video(type_name: str) -> bool:
    type_ = types.get(type_name)
    return type_ is not None and type_.match_kind == "vpdq"


def _fetch(queryset: Any, names: Sequence[str]) -> list[tuple[Any, ...]]:
    """``values_list(*names)`` as plain tuples. On PostgreSQL the compiled query runs on a cursor
    with psycopg's own C loaders for timestamps, and JSON stays text (``_tags`` decodes it),
    instead of Django's per-value Python converters, which cost more than the query."""
    if connection.vendor != "postgresql":
        return list(queryset.values_list(*names))
    import psycopg
    from psycopg.pq import Format

    try:
        sql, params = queryset.values_list(*names).query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing, e.g. a suspended member's view
        return []
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader(
            "timestamptz",
            psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, Format.TEXT),
        )
        cursor.execute(sql, params)
        return cursor.fetchall()


def _tags() -> Callable[[Any], tuple[str, ...]]:
    """Tags as a tuple, from JSON text decoded once per distinct value, or from a list."""
    decoded: dict[str, tuple[str, ...]] = {}

    def tags(value: Any) -> tuple[str, ...]:
        if not isinstance(value, str):
            return tuple(value or ())
        found = decoded.get(value)
        if found is None:
            found = decoded[value] = tuple(json.loads(value) or ())
        return found

    return tags


def signal_rows(
    queryset: Any, *, extra: Sequence[str] = ()
) -> tuple[list[SignalRow], list[tuple[Any, ...]]]:
    """The rows of ``queryset`` in its order, and for each the values of the ``extra``
    annotations. Owners, categories and video frames come from one small query each."""
    raw = _fetch(queryset, (*_COLUMNS, *extra))
    n = len(_COLUMNS)
    owner_at, category_at, type_at = (
        _COLUMNS.index("owner_id"),
        _COLUMNS.index("category_id"),
        _COLUMNS.index("indicator__type"),
    )
    owners = {
        pk: (slug, attribution == "anonymous")
        for pk, slug, attribution in Member.objects.filter(
            pk__in={r[owner_at] for r in raw}
        ).values_list("pk", "slug", "attribution")
    }
    codes = dict(Category.objects.values_list("pk", "code"))
    video_types = {t for t in {r[type_at] for r in raw} if _is_video(t)}
    frames: dict[int, str] = {}
    if video_types:
        wanted = [r[2] for r in raw if r[type_at] in video_types]
        frames = dict(
            IndicatorFrames.objects.filter(ids_in("indicator_id", wanted)).values_list(
                "indicator_id", "text"
            )
        )
    make, tags, t = SignalRow._make, _tags(), _TAGS
    rows = [
        make(
            (
                *r[:t],
                tags(r[t]),
                *r[t + 1 : n],
                *owners[r[owner_at]],
                codes[r[category_at]],
                frames.get(r[2]),
            )
        )
        for r in raw
    ]
    return rows, [r[n:] for r in raw] if extra else []


def owner_label(signal: SignalRow, viewer_id: Any) -> str:
    if signal.owner_id == viewer_id or not signal.owner_anonymous:
        return signal.owner_slug
    return "anonymous"


def signal_out(
    signal: SignalRow, *, viewer_id: Any, feedback: dict[str, int] | None = None
) -> dict[str, Any]:
    """A signal as ``viewer`` may see it. Peppered identifier values never leave the exchange:
    members match them by sending their own digests to /match."""
    type_ = types.get(signal.type)
    body: dict[str, Any] = {
        "id": signal.pk,
        "type": signal.type,
        "indicator_id": signal.indicator_id,
        "value": None if (type_ is None or type_.peppered) else signal.value,
        "category": signal.category_code,
        "tags": signal.tags,
        "confidence": signal.confidence,
        "severity": signal.severity,
        "tlp": signal.tlp,
        "owner": owner_label(signal, viewer_id),
        "status": signal.status,
        "expires_at": signal.expires_at,
        "created_at": signal.created_at,
        "updated_at": signal.updated_at,
        "bundle_id": str(signal.bundle_id) if signal.bundle_id else None,
        "seq": signal.seq,
        "feedback": feedback or {},
    }
    if type_ is not None and type_.match_kind == "vpdq":
        body["frames"] = signal.frames
    if signal.quality is not None:
        body["quality"] = signal.quality
    if signal.lang:
        body["lang"] = signal.lang
    if signal.owner_id == viewer_id:
        body.update(
            audience=signal.audience,
            external_id=signal.external_id,
            retracted_at=signal.retracted_at,
            retract_reason=signal.retract_reason,
            flagged=signal.flagged_at is not None,
        )
    return body


def tombstone_out(signal: SignalRow) -> dict[str, Any]:
    """What a member learns when a signal leaves its view: the id it already had, no more."""
    return {
        "id": signal.pk,
        "type": signal.type,
        "indicator_id": signal.indicator_id,
        "status": "deleted",
    }


def reactor_label(feedback: Feedback) -> str:
    """Who reacted, as the owner may learn it: the member's slug, or ``anonymous`` for a
    member that takes part without attribution."""
    return "anonymous" if feedback.member.attribution == "anonymous" else feedback.member.slug


def feedback_out(feedback: Feedback) -> dict[str, Any]:
    """One reaction as its author and the signal's owner see it."""
    return {
        "id": feedback.pk,
        "signal_id": feedback.signal_id,
        "reaction": feedback.reaction,
        "action_taken": [a for a in feedback.action_taken.split(",") if a],
        "note": feedback.note,
        "member": reactor_label(feedback),
        "created_at": feedback.created_at,
        "updated_at": feedback.updated_at,
    }


def _owner_signal_summary(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.pk,
        "type": signal.indicator.type,
        "indicator_id": signal.indicator_id,
        "category": signal.category.code,
        "status": signal.status,
        "external_id": signal.external_id,
        "flagged": signal.flagged_at is not None,
        "flagged_at": signal.flagged_at,
        "feedback": feedback_totals([signal.pk]).get(signal.pk, {}),
    }


def feedback_event(feedback_id: int, seq: int) -> dict[str, Any] | None:
    """The webhook event for outbox ``feedback.created``, sent to the signal's owner only:
    ``{"seq", "op": "feedback", "feedback": {...}, "signal": {...}}``. ``None`` if the
    reaction was since replaced (``actioned`` ↔ ``not_actioned``)."""
    feedback = (
        Feedback.objects.select_related(
            "member", "signal__indicator", "signal__category", "signal__owner"
        )
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        return None
    return {
        "seq": seq,
        "op": "feedback",
        "feedback": feedback_out(feedback),
        "signal": _owner_signal_summary(feedback.signal),
    }


def flag_event(feedback_id: int, seq: int) -> dict[str, Any] | None:
    """The webhook event for outbox ``signal.flagged``, sent to the signal's owner only:
    ``{"seq", "op": "flag", "signal": {...}}``."""
    feedback = (
        Feedback.objects.select_related("signal__indicator", "signal__category")
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        return None
    return {"seq": seq, "op": "flag", "signal": _owner_signal_summary(feedback.signal)}

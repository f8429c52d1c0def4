"""Subscriptions, fan-out, webhook delivery and the sweeper.

- ``subscription_*``: a member manages its webhook endpoints; each service validates, writes
  and audits in one transaction.
- ``fan_out_pending``: claims outbox rows and turns them into ``Delivery`` rows (one per
  subscription per batch of up to ``BEACON_WEBHOOK_BATCH_EVENTS`` events) for exactly the
  members ``policy.recipients_for`` allows — and tombstones for exactly the members that were
  given a signal (``Disclosure``) and may no longer see it.
- ``delivery_attempt``: one signed POST of one delivery; success records the disclosures and
  the ``delivery.sent`` audit event in the same transaction as the status change.
- ``sweep``: re-queues outbox rows and due deliveries whose task was lost.
"""

from __future__ import annotations

import json
import logging
import secrets as pysecrets
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Member
from exchange import audit, jsonio, policy
from exchange.audit import Actor, AuditAction
from exchange.delivery import dispatch, sender, signing, ssrf
from exchange.delivery.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    OutboxEntry,
    OutboxEvent,
    Payload,
    Subscription,
    SubscriptionStatus,
    WebhookEvent,
)

logger = logging.getLogger(__name__)
SYSTEM = Actor.system("delivery")


class NotFound(Exception):
    """No such subscription or delivery for this member."""


class InvalidRequest(Exception):
    """The request is invalid; ``errors`` lists {index, field, detail}."""

    def __init__(self, errors: list[dict[str, Any]], detail: str = "") -> None:
        super().__init__(detail or "; ".join(e["detail"] for e in errors))
        self.errors = errors
        self.detail = detail


class Conflict(Exception):
    """The request cannot be carried out in the object's current state."""


def _err(field: str, detail: str) -> dict[str, Any]:
    return {"index": None, "field": field, "detail": detail}


# -- JSON ------------------------------------------------------------------------------------
def dumps(value: Any) -> str:
    """Webhook JSON is rendered exactly as the API renders it (``jsonio.dumps``), so a webhook
    event equals the feed event for the same change."""
    return jsonio.dumps(value).decode()


def _now_iso(now: datetime) -> str:
    return dumps(now).strip('"')


def _batch_body(events_json: Sequence[str], now: datetime) -> bytes:
    return (
        '{"type":"signals.batch","timestamp":"'
        + _now_iso(now)
        + '","data":{"events":['
        + ",".join(events_json)
        + "]}}"
    ).encode()


def payload_body(payload: Payload) -> bytes:
    return zlib.decompress(bytes(payload.body))


def _new_payload(body: bytes, *, event_count: int, upserts: list[list[int]]) -> Payload:
    return Payload(body=zlib.compress(body, 1), event_count=event_count, upserts=upserts)


# -- settings --------------------------------------------------------------------------------
def retry_schedule() -> list[float]:
    """Delays before attempts 1, 2, …, scaled by ``BEACON_WEBHOOK_RETRY_SCALE`` (tests)."""
    scale = float(settings.BEACON_WEBHOOK_RETRY_SCALE)
    return [float(x) * scale for x in settings.BEACON_WEBHOOK_RETRY_SCHEDULE]


def _batch_size() -> int:
    return max(1, int(settings.BEACON_WEBHOOK_BATCH_EVENTS))


# -- subscriptions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CreatedSubscription:
    subscription: Subscription
    secret: str


def _validate_filters(
    *, types: Any, categories: Any, events: Any
) -> tuple[list[str], list[str], list[str]]:
    from signals import types as registry
    from signals.models import Category

    errors: list[dict[str, Any]] = []
    out: dict[str, list[str]] = {}
    for name, value in (("types", types), ("categories", categories), ("events", events)):
        if value is None:
            out[name] = []
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors.append(_err(name, f"{name} must be a list of strings"))
            out[name] = []
            continue
        out[name] = sorted(set(value))
    unknown_types = [t for t in out["types"] if registry.get(t) is None]
    if unknown_types:
        errors.append(
            _err("types", f"unknown types: {', '.join(unknown_types)}; see GET /signal-types")
        )
    if out["categories"]:
        known = set(
            Category.objects.filter(code__in=out["categories"]).values_list("code", flat=True)
        )
        unknown = [c for c in out["categories"] if c not in known]
        if unknown:
            errors.append(
                _err("categories", f"unknown categories: {', '.join(unknown)}; see GET /categories")
            )
    unknown_events = [e for e in out["events"] if e not in WebhookEvent.values]
    if unknown_events:
        errors.append(
            _err(
                "events",
                f"unknown events: {', '.join(unknown_events)}; use {', '.join(WebhookEvent.values)}",
            )
        )
    if errors:
        raise InvalidRequest(errors)
    return out["types"], out["categories"], out["events"]


def _validate_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest([_err("url", "url is required")])
    url = url.strip()
    if len(url) > 2000:
        raise InvalidRequest([_err("url", "url is at most 2000 characters")])
    try:
        ssrf.check(url)
    except ssrf.UnsafeUrl as exc:
        raise InvalidRequest(
            [_err("url", f"this URL may not receive webhooks: {exc}")],
            "The webhook URL was rejected.",
        ) from None
    return url


@transaction.atomic
def subscription_create(
    *,
    member: Member,
    url: Any,
    actor: Actor,
    types: Any = None,
    categories: Any = None,
    events: Any = None,
    description: Any = "",
) -> CreatedSubscription:
    """Create a webhook subscription. The ``whsec_`` secret is returned once."""
    checked_url = _validate_url(url)
    type_list, category_list, event_list = _validate_filters(
        types=types, categories=categories, events=events
    )
    if description is not None and not isinstance(description, str):
        raise InvalidRequest([_err("description", "description must be a string")])
    if len(description or "") > 200:
        raise InvalidRequest([_err("description", "description is at most 200 characters")])
    limit = int(settings.BEACON_MAX_SUBSCRIPTIONS_PER_MEMBER)
    if Subscription.objects.visible().filter(member=member).count() >= limit:
        raise InvalidRequest([_err("", f"a member may have at most {limit} subscriptions")])
    secret = signing.generate_secret()
    subscription = Subscription.objects.create(
        member=member,
        url=checked_url,
        description=description or "",
        types=type_list,
        categories=category_list,
        events=event_list,
        secret_encrypted=signing.encrypt_secret(secret),
    )
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_CREATE,
        target=f"subscription:{subscription.pk}",
        params={"url": checked_url},
        details={"types": type_list, "categories": category_list, "events": event_list},
    )
    return CreatedSubscription(subscription=subscription, secret=secret)


def _own_subscription(member: Member, subscription_id: int, *, lock: bool = False) -> Subscription:
    qs = Subscription.objects.visible().filter(pk=subscription_id, member=member)
    if lock:
        qs = qs.select_for_update()
    subscription = qs.first()
    if subscription is None:
        raise NotFound()
    return subscription


@transaction.atomic
def subscription_list(*, member: Member, actor: Actor) -> list[Subscription]:
    rows = list(Subscription.objects.visible().filter(member=member).order_by("pk"))
    audit.record(actor=actor, action=AuditAction.SUBSCRIPTION_READ, result_count=len(rows))
    return rows


@transaction.atomic
def subscription_get(*, member: Member, subscription_id: int, actor: Actor) -> Subscription:
    subscription = _own_subscription(member, subscription_id)
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_READ,
        target=f"subscription:{subscription.pk}",
        result_count=1,
    )
    return subscription


@transaction.atomic
def subscription_delete(*, member: Member, subscription_id: int, actor: Actor) -> None:
    """Stop a subscription. Its pending deliveries are cancelled; its history is kept."""
    subscription = _own_subscription(member, subscription_id, lock=True)
    now = timezone.now()
    subscription.status = SubscriptionStatus.DELETED
    subscription.status_reason = "deleted by the member"
    subscription.updated_at = now
    subscription.save(update_fields=["status", "status_reason", "updated_at"])
    cancelled = Delivery.objects.filter(
        subscription=subscription, status=DeliveryStatus.PENDING
    ).update(status=DeliveryStatus.CANCELLED, last_error="the subscription was deleted")
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_DELETE,
        target=f"subscription:{subscription.pk}",
        details={"cancelled_deliveries": cancelled},
    )


@transaction.atomic
def subscription_rotate_secret(
    *, member: Member, subscription_id: int, actor: Actor
) -> CreatedSubscription:
    """Issue a new secret. For ``BEACON_WEBHOOK_ROTATION_HOURS`` every webhook carries a
    signature under the old secret as well, so receivers can switch without losing any."""
    subscription = _own_subscription(member, subscription_id, lock=True)
    now = timezone.now()
    secret = signing.generate_secret()
    subscription.previous_secret_encrypted = subscription.secret_encrypted
    subscription.previous_secret_expires_at = now + timedelta(
        hours=float(settings.BEACON_WEBHOOK_ROTATION_HOURS)
    )
    subscription.secret_encrypted = signing.encrypt_secret(secret)
    subscription.updated_at = now
    subscription.save(
        update_fields=[
            "previous_secret_encrypted",
            "previous_secret_expires_at",
            "secret_encrypted",
            "updated_at",
        ]
    )
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_ROTATE,
        target=f"subscription:{subscription.pk}",
        details={"previous_valid_until": subscription.previous_secret_expires_at.isoformat()},
    )
    return CreatedSubscription(subscription=subscription, secret=secret)


@transaction.atomic
def subscription_disable(*, subscription: Subscription, reason: str, actor: Actor) -> Subscription:
    """Stop sending to an endpoint (it answered 410 Gone, or an administrator decided)."""
    Subscription.objects.filter(pk=subscription.pk).update(
        status=SubscriptionStatus.DISABLED, status_reason=reason[:300], updated_at=timezone.now()
    )
    subscription.status = SubscriptionStatus.DISABLED
    subscription.status_reason = reason[:300]
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_PAUSE,
        target=f"subscription:{subscription.pk}",
        details={"status": "disabled", "reason": reason[:300]},
    )
    return subscription


@transaction.atomic
def subscription_resume(*, subscription: Subscription, actor: Actor) -> Subscription:
    """Send to a disabled or failing endpoint again (new changes only: past deliveries are
    redelivered one by one, or backfilled from the feed)."""
    if subscription.status == SubscriptionStatus.DELETED:
        raise Conflict("a deleted subscription cannot be resumed")
    ssrf_error = None
    try:
        ssrf.check(subscription.url)
    except ssrf.UnsafeUrl as exc:
        ssrf_error = str(exc)
    if ssrf_error:
        raise InvalidRequest([_err("url", f"this URL may not receive webhooks: {ssrf_error}")])
    Subscription.objects.filter(pk=subscription.pk).update(
        status=SubscriptionStatus.ACTIVE, status_reason="", updated_at=timezone.now()
    )
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.status_reason = ""
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_RESUME,
        target=f"subscription:{subscription.pk}",
    )
    return subscription


@transaction.atomic
def subscription_resume_own(*, member: Member, subscription_id: int, actor: Actor) -> Subscription:
    return subscription_resume(
        subscription=_own_subscription(member, subscription_id, lock=True), actor=actor
    )


def subscription_test(*, member: Member, subscription_id: int, actor: Actor) -> Delivery:
    """Send a signed ping to the endpoint now, and say how it answered."""
    with transaction.atomic():
        subscription = _own_subscription(member, subscription_id)
        if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.FAILING):
            raise Conflict(f"the subscription is {subscription.status}; resume it first")
        now = timezone.now()
        body = dumps(
            {
                "type": "ping",
                "timestamp": now,
                "data": {"subscription_id": subscription.pk, "message": "Beacon test ping"},
            }
        ).encode()
        payload = _new_payload(body, event_count=0, upserts=[])
        payload.save()
        delivery = Delivery.objects.create(
            subscription=subscription,
            member=member,
            payload=payload,
            kind=DeliveryKind.PING,
            next_attempt_at=now,
            enqueued_at=now,
        )
        audit.record(
            actor=actor,
            action=AuditAction.SUBSCRIPTION_TEST,
            target=f"subscription:{subscription.pk}",
            details={"delivery": delivery.pk, "webhook_id": delivery.webhook_id},
        )
    delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def delivery_list(
    *,
    member: Member,
    subscription_id: int,
    actor: Actor,
    before_id: int | None = None,
    limit: int = 100,
    status: str | None = None,
) -> tuple[list[Delivery], int | None]:
    """A subscription's deliveries, newest first."""
    subscription = _own_subscription(member, subscription_id)
    qs = Delivery.objects.filter(subscription=subscription).order_by("-pk")
    if before_id:
        qs = qs.filter(pk__lt=before_id)
    if status:
        if status not in DeliveryStatus.values:
            raise InvalidRequest(
                [_err("status", f"status must be one of {', '.join(DeliveryStatus.values)}")]
            )
        qs = qs.filter(status=status)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    audit.record(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_READ,
        target=f"subscription:{subscription.pk}",
        params={"deliveries": True, "status": status or ""},
        result_count=len(rows),
    )
    return rows, (rows[-1].pk if more and rows else None)


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery, actor: Actor) -> Delivery:
    """Send a delivery again, with the same ``webhook-id`` and body. The schedule restarts."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    subscription = Subscription.objects.get(pk=delivery.subscription_id)
    if delivery.status == DeliveryStatus.PENDING:
        raise Conflict("the delivery is already waiting to be sent")
    if delivery.superseded_by_id:
        raise Conflict(
            f"the delivery's events were re-packed into delivery {delivery.superseded_by_id}"
        )
    if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.FAILING):
        raise Conflict(f"the subscription is {subscription.status}; resume it first")
    now = timezone.now()
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.redeliveries += 1
    delivery.next_attempt_at = now
    delivery.enqueued_at = now
    delivery.lease_until = None
    delivery.lease_token = ""
    delivery.save(
        update_fields=[
            "status",
            "attempts",
            "redeliveries",
            "next_attempt_at",
            "enqueued_at",
            "lease_until",
            "lease_token",
        ]
    )
    audit.record(
        actor=actor,
        action=AuditAction.DELIVERY_REDELIVER,
        target=f"delivery:{delivery.pk}",
        details={"subscription": subscription.pk, "webhook_id": delivery.webhook_id},
    )
    _queue_after_commit([delivery.pk])
    return delivery


@transaction.atomic
def delivery_redeliver_own(*, member: Member, delivery_id: int, actor: Actor) -> Delivery:
    delivery = Delivery.objects.filter(
        pk=delivery_id,
        subscription__member=member,
    ).exclude(subscription__status=SubscriptionStatus.DELETED)
    found = delivery.first()
    if found is None:
        raise NotFound()
    return delivery_redeliver(delivery=found, actor=actor)


def _queue_after_commit(ids: list[int], countdown: float | None = None) -> None:
    if ids:
        transaction.on_commit(lambda: dispatch.schedule_deliveries(ids, countdown=countdown))


# -- fan-out ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FanOutResult:
    processed: int
    # True when the time budget ran out with rows possibly left: queue another run.
    more: bool


def fan_out_pending(
    *, budget_seconds: float = 30.0, max_entries: int | None = None
) -> FanOutResult:
    """Process unprocessed outbox rows, one per transaction, until none is left or the time
    budget is spent. Safe to run in many workers at once:
    rows are claimed with ``FOR UPDATE SKIP LOCKED`` (SQLite serialises writers instead), and a
    row's deliveries and its ``processed_at`` commit together, so each row fans out once."""
    deadline = time.monotonic() + budget_seconds
    done = 0
    while time.monotonic() < deadline and (max_entries is None or done < max_entries):
        with transaction.atomic():
            entry = (
                OutboxEntry.objects.select_for_update(skip_locked=True)
                .filter(processed_at__isnull=True)
                .order_by("pk")
                .first()
            )
            if entry is None:
                return FanOutResult(processed=done, more=False)
            ids = fan_out_entry(entry)
            entry.processed_at = timezone.now()
            entry.save(update_fields=["processed_at"])
            _queue_after_commit(ids)
        done += 1
    return FanOutResult(processed=done, more=True)


@dataclass
class _Batch:
    """The events of one outbox row, keyed by (seq, op), and who gets which."""

    events: dict[tuple[int, str], str]
    upsert_ids: dict[tuple[int, str], int]
    per_subscription: dict[int, list[tuple[int, str]]]


def fan_out_entry(entry: OutboxEntry) -> list[int]:
    """Create the deliveries for one outbox row (inside the caller's transaction)."""
    if entry.event in (OutboxEvent.FEEDBACK_CREATED, OutboxEvent.SIGNAL_FLAGGED):
        return _fan_out_feedback(entry)
    return _fan_out_signals(entry)


def _subscriptions_by_member(
    member_ids: Iterable[int] | None = None,
) -> dict[int, list[Subscription]]:
    qs = Subscription.objects.receiving().filter(member__status="active")
    if member_ids is not None:
        qs = qs.filter(member_id__in=list(member_ids))
    out: dict[int, list[Subscription]] = defaultdict(list)
    for sub in qs.order_by("pk"):
        out[sub.member_id].append(sub)
    return out


def _context(member_ids: Iterable[int]) -> list[policy.Audience]:
    members = Member.objects.active().filter(pk__in=list(member_ids))
    return policy.audiences(members.prefetch_related("attestations", "sharing_groups"))


def _policy_key(s: Any, now: datetime) -> tuple[Any, ...]:
    """Every field ``policy.may_receive`` reads from a signal: signals with equal keys have
    equal recipients, so a bulk upload computes its recipients once, not once per signal."""
    return (
        s.owner_id,
        policy.is_live(s, now),
        s.audience_kind,
        s.audience_group_id,
        s.audience_members,
        s.category_id,
    )


def _fan_out_signals(entry: OutboxEntry) -> list[int]:
    from signals.models import Disclosure, Signal
    from signals.serialization import feedback_totals, signal_out, signal_rows, tombstone_out

    subs = _subscriptions_by_member([entry.member_id] if entry.member_id else None)
    if not subs:
        return []
    context = _context(subs)
    if not context:
        return []
    now = timezone.now()
    batch = _Batch(events={}, upsert_ids={}, per_subscription=defaultdict(list))
    recipients_memo: dict[tuple[Any, ...], frozenset[int]] = {}
    takers_memo: dict[tuple[Any, ...], list[int]] = {}
    # The same rows and serialiser as the feed, so a webhook event equals the feed event.
    signals, _ = signal_rows(
        Signal.objects.filter(seq__gte=entry.seq_from, seq__lte=entry.seq_to).order_by("seq")
    )
    step = 5000
    for start in range(0, len(signals), step):
        chunk = signals[start : start + step]
        ids = [s.pk for s in chunk]
        given: dict[int, set[int]] = defaultdict(set)
        for signal_id, member_id in Disclosure.objects.filter(
            signal_id__in=ids, member_id__in=list(subs)
        ).values_list("signal_id", "member_id"):
            given[signal_id].add(member_id)
        live_ids = [s.pk for s in chunk if policy.is_live(s, now)]
        totals = feedback_totals(live_ids)
        for s in chunk:
            pkey = _policy_key(s, now)
            recipients = recipients_memo.get(pkey)
            if recipients is None:
                recipients = (
                    frozenset(m.pk for m in policy.recipients_for(s, context=context, at=now))
                    if pkey[1]
                    else frozenset()
                )
                recipients_memo[pkey] = recipients
            gone = given.get(s.pk, set()) - recipients
            type_name, code = s.type, s.category_code
            if recipients:
                tkey = (pkey, type_name)
                takers = takers_memo.get(tkey)
                if takers is None:
                    takers = _takers(
                        subs, recipients, WebhookEvent.SIGNAL_UPSERTED, type_name, code
                    )
                    takers_memo[tkey] = takers
                if takers:
                    key = (s.seq, "upsert")
                    for sub_id in takers:
                        batch.per_subscription[sub_id].append(key)
                    # viewer_id=None: recipients are never the owner, so every recipient sees
                    # the same body, serialised once.
                    batch.events[key] = dumps(
                        {
                            "seq": s.seq,
                            "op": "upsert",
                            "signal": signal_out(s, viewer_id=None, feedback=totals.get(s.pk)),
                        }
                    )
                    batch.upsert_ids[key] = s.pk
            if gone and _assign(
                batch, subs, gone, (s.seq, "delete"), WebhookEvent.SIGNAL_RETRACTED, type_name, code
            ):
                batch.events[(s.seq, "delete")] = dumps(
                    {"seq": s.seq, "op": "delete", "signal": tombstone_out(s)}
                )
    return _create_deliveries(entry, batch, subs, now)


def _takers(
    subs: dict[int, list[Subscription]],
    member_ids: Iterable[int],
    event: str,
    type_name: str,
    code: str,
) -> list[int]:
    """The subscriptions of these members whose filters take this event."""
    return [
        sub.pk
        for member_id in sorted(member_ids)
        for sub in subs.get(member_id, ())
        if sub.wants_event(event) and sub.wants(type_name=type_name, category_code=code)
    ]


def _assign(
    batch: _Batch,
    subs: dict[int, list[Subscription]],
    member_ids: Iterable[int],
    key: tuple[int, str],
    event: str,
    type_name: str,
    code: str,
) -> bool:
    """Give the event to every subscription of these members whose filters take it. Returns
    whether any did (an event nobody takes is never serialised)."""
    took = False
    for member_id in member_ids:
        for sub in subs.get(member_id, ()):
            if sub.wants_event(event) and sub.wants(type_name=type_name, category_code=code):
                batch.per_subscription[sub.pk].append(key)
                took = True
    return took


def _fan_out_feedback(entry: OutboxEntry) -> list[int]:
    """``feedback.created`` and ``signal.flagged`` events go to the signal owner's
    subscriptions only; their bodies are built by ``signals.serialization`` (decision 0600)
    and carry the feed seq the outbox row allocated for them."""
    from signals.models import Feedback
    from signals.serialization import feedback_event, flag_event

    if entry.feedback_id is None:
        return []
    feedback = (
        Feedback.objects.select_related("signal__owner", "signal__indicator", "signal__category")
        .filter(pk=entry.feedback_id)
        .first()
    )
    if feedback is None:
        return []
    signal = feedback.signal
    owner = signal.owner
    if not policy.member_may_read(owner):
        return []
    flagged = entry.event == OutboxEvent.SIGNAL_FLAGGED
    wanted_event = WebhookEvent.SIGNAL_FLAGGED if flagged else WebhookEvent.FEEDBACK_CREATED
    subs = _subscriptions_by_member([owner.pk])
    wanted = [
        sub
        for sub in subs.get(owner.pk, ())
        if sub.wants_event(wanted_event)
        and sub.wants(type_name=signal.indicator.type, category_code=signal.category.code)
    ]
    if not wanted:
        return []
    event = (flag_event if flagged else feedback_event)(feedback.pk, entry.seq_from)
    if event is None:
        return []
    key = (entry.seq_from, "flag" if flagged else "feedback")
    batch = _Batch(
        events={key: dumps(event)},
        upsert_ids={},
        per_subscription={sub.pk: [key] for sub in wanted},
    )
    return _create_deliveries(entry, batch, subs, timezone.now())


def _create_deliveries(
    entry: OutboxEntry | None,
    batch: _Batch,
    subs: dict[int, list[Subscription]],
    now: datetime,
) -> list[int]:
    """One delivery per subscription per chunk of events; subscriptions that get the same
    chunk share one stored payload."""
    by_id = {sub.pk: sub for group in subs.values() for sub in group}
    size = _batch_size()
    payloads: dict[tuple[tuple[int, str], ...], Payload] = {}
    pending: list[tuple[Subscription, tuple[tuple[int, str], ...]]] = []
    for sub_id, keys in batch.per_subscription.items():
        for start in range(0, len(keys), size):
            chunk = tuple(keys[start : start + size])
            if chunk not in payloads:
                payloads[chunk] = _new_payload(
                    _batch_body([batch.events[k] for k in chunk], now),
                    event_count=len(chunk),
                    upserts=[[batch.upsert_ids[k], k[0]] for k in chunk if k in batch.upsert_ids],
                )
            pending.append((by_id[sub_id], chunk))
    if not pending:
        return []
    stored = Payload.objects.bulk_create(list(payloads.values()), batch_size=50)
    for key, payload in zip(list(payloads), stored, strict=True):
        payloads[key] = payload
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                subscription=sub,
                member_id=sub.member_id,
                payload=payloads[chunk],
                outbox_entry=entry,
                event_count=len(chunk),
                next_attempt_at=now,
                enqueued_at=now,
                created_at=now,
            )
            for sub, chunk in pending
        ],
        batch_size=500,
    )
    return [d.pk for d in deliveries]


# -- delivering ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttemptOutcome:
    status: str
    detail: str = ""


def _claim(delivery_id: int) -> str | None:
    """Take the lease on a due delivery; ``None`` if it is not due, done, or in flight."""
    now = timezone.now()
    token = pysecrets.token_hex(8)
    lease = timedelta(seconds=float(settings.BEACON_DELIVERY_LEASE_SECONDS))
    with transaction.atomic():
        claimed = (
            Delivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
            )
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + lease, lease_token=token)
        )
    return token if claimed else None


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """One attempt at one delivery. Idempotent: a delivery that is done, not yet due or being
    sent by another worker is left alone."""
    token = _claim(delivery_id)
    if token is None:
        return AttemptOutcome("skipped", "not due, already done, or in flight elsewhere")
    delivery = Delivery.objects.select_related("subscription", "member", "payload").get(
        pk=delivery_id
    )
    subscription = delivery.subscription
    if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.FAILING):
        _finish_unsent(delivery, token, f"the subscription is {subscription.status}")
        return AttemptOutcome(DeliveryStatus.CANCELLED, "subscription not receiving")
    if not policy.member_may_read(delivery.member):
        _finish_unsent(delivery, token, "the member may not receive signals now")
        return AttemptOutcome(DeliveryStatus.CANCELLED, "member may not receive")
    body = payload_body(delivery.payload)
    if delivery.payload.upserts:
        dropped = _no_longer_receivable(delivery)
        if dropped:
            return _repack(delivery, token, body, dropped)
    now = timezone.now()
    secrets_ = [signing.decrypt_secret(subscription.secret_encrypted)]
    if (
        subscription.previous_secret_encrypted
        and subscription.previous_secret_expires_at
        and subscription.previous_secret_expires_at > now
    ):
        secrets_.append(signing.decrypt_secret(subscription.previous_secret_encrypted))
    headers = signing.headers(
        secrets_=secrets_,
        webhook_id=delivery.webhook_id,
        timestamp=int(now.timestamp()),
        body=body,
    )
    result = sender.post(url=subscription.url, body=body, headers=headers)
    if result.ok:
        return _record_success(delivery, token, result)
    return _record_failure(delivery, token, result)


def _owned(delivery: Delivery, token: str) -> Delivery | None:
    """The delivery, locked, if this attempt still holds its lease."""
    return (
        Delivery.objects.select_for_update()
        .filter(pk=delivery.pk, lease_token=token, status=DeliveryStatus.PENDING)
        .first()
    )


def _finish_unsent(delivery: Delivery, token: str, reason: str) -> None:
    with transaction.atomic():
        row = _owned(delivery, token)
        if row is None:
            return
        row.status = DeliveryStatus.CANCELLED
        row.last_error = reason[:500]
        row.lease_until = None
        row.lease_token = ""
        row.save(update_fields=["status", "last_error", "lease_until", "lease_token"])


@dataclass(slots=True)
class _Row:
    """The policy-relevant columns of a signal, without building a model instance."""

    pk: int
    owner_id: Any
    status: str
    expires_at: datetime | None
    audience_kind: str
    audience_group_id: Any
    audience_members: str
    category_id: Any


_ROW_FIELDS = (
    "pk",
    "owner_id",
    "status",
    "expires_at",
    "audience_kind",
    "audience_group_id",
    "audience_members",
    "category_id",
)


def _no_longer_receivable(delivery: Delivery) -> set[int]:
    """Signals in the body the member may no longer receive (retracted, expired, out of its
    audience since the body was built). They are never sent: a member is given only what the
    policy allows at the moment of sending."""
    from signals.models import Signal

    ids = [int(sid) for sid, _ in delivery.payload.upserts]
    if not policy.member_may_receive(delivery.member):
        return set(ids)
    [audience] = policy.audiences([delivery.member])
    now = timezone.now()
    allowed: set[int] = set()
    memo: dict[tuple[Any, ...], bool] = {}
    for start in range(0, len(ids), 5000):
        for values in Signal.objects.filter(pk__in=ids[start : start + 5000]).values_list(
            *_ROW_FIELDS
        ):
            row = _Row(*values)
            key = _policy_key(row, now)
            ok = memo.get(key)
            if ok is None:
                ok = policy.may_receive(
                    audience.member,
                    row,
                    group_ids=audience.group_ids,
                    category_ids=audience.category_ids,
                    at=now,
                )
                memo[key] = ok
            if ok:
                allowed.add(row.pk)
    return set(ids) - allowed


def _repack(delivery: Delivery, token: str, body: bytes, dropped: set[int]) -> AttemptOutcome:
    """Replace a delivery whose body holds signals the member may no longer receive by a new
    one without them (a new ``webhook-id``: one id always means one body)."""
    document = json.loads(body)
    kept = [
        e
        for e in document["data"]["events"]
        if not (e.get("op") == "upsert" and e["signal"]["id"] in dropped)
    ]
    with transaction.atomic():
        row = _owned(delivery, token)
        if row is None:
            return AttemptOutcome("skipped", "lease lost")
        replacement = None
        if kept:
            now = timezone.now()
            payload = _new_payload(
                _batch_body([dumps(e) for e in kept], now),
                event_count=len(kept),
                upserts=[[sid, seq] for sid, seq in row.payload.upserts if sid not in dropped],
            )
            payload.save()
            replacement = Delivery.objects.create(
                subscription_id=row.subscription_id,
                member_id=row.member_id,
                payload=payload,
                outbox_entry_id=row.outbox_entry_id,
                kind=row.kind,
                event_count=len(kept),
                next_attempt_at=now,
                enqueued_at=now,
            )
            _queue_after_commit([replacement.pk])
        row.status = DeliveryStatus.CANCELLED
        row.superseded_by = replacement
        row.last_error = (
            f"{len(dropped)} signal(s) no longer receivable by the member; "
            + (f"re-packed as delivery {replacement.pk}" if replacement else "nothing left to send")
        )[:500]
        row.lease_until = None
        row.lease_token = ""
        row.save(
            update_fields=["status", "superseded_by", "last_error", "lease_until", "lease_token"]
        )
    return AttemptOutcome(DeliveryStatus.CANCELLED, row.last_error)


def _lock_current_seqs(ids: list[int]) -> dict[int, tuple[int, str]]:
    """Current (seq, owner slug) of the signals, share-locked on Postgres so a concurrent
    change of one of them waits for this transaction (its fan-out then sees our disclosure)."""
    from signals.models import Signal

    rows: list[tuple[int, int, int]] = []
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        table = Signal._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, seq, owner_id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR SHARE",  # noqa: S608 - table name from the model
                [ids],
            )
            rows = list(cursor.fetchall())
    else:
        for start in range(0, len(ids), 5000):
            rows.extend(
                Signal.objects.filter(pk__in=ids[start : start + 5000]).values_list(
                    "pk", "seq", "owner_id"
                )
            )
    slugs = dict(
        Member.objects.filter(pk__in={owner for _, _, owner in rows}).values_list("pk", "slug")
    )
    return {sid: (seq, slugs[owner]) for sid, seq, owner in rows}


def _record_disclosures(member_id: int, signal_ids: list[int], now: datetime) -> None:
    """First disclosures by webhook; a signal the member already had keeps its first row."""
    from signals.models import Disclosure

    if not signal_ids:
        return
    if connection.vendor == "postgresql":
        table = Disclosure._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (member_id, signal_id, channel, first_at) "  # noqa: S608 - table name from the model
                "SELECT %s, unnest(%s::bigint[]), 'webhook', %s "
                "ON CONFLICT (member_id, signal_id) DO NOTHING",
                [member_id, signal_ids, now],
            )
        return
    Disclosure.objects.bulk_create(
        [Disclosure(member_id=member_id, signal_id=sid, channel="webhook") for sid in signal_ids],
        ignore_conflicts=True,
        batch_size=2000,
    )


def _record_success(delivery: Delivery, token: str, result: sender.SendResult) -> AttemptOutcome:
    with transaction.atomic():
        row = _owned(delivery, token)
        if row is None:
            return AttemptOutcome("skipped", "lease lost after a successful send")
        now = timezone.now()
        row.status = DeliveryStatus.SUCCEEDED
        row.attempts += 1
        row.last_attempt_at = now
        row.delivered_at = now
        row.last_status_code = result.status_code
        row.last_error = ""
        row.lease_until = None
        row.lease_token = ""
        row.save(
            update_fields=[
                "status",
                "attempts",
                "last_attempt_at",
                "delivered_at",
                "last_status_code",
                "last_error",
                "lease_until",
                "lease_token",
            ]
        )
        if delivery.subscription.status == SubscriptionStatus.FAILING:
            Subscription.objects.filter(
                pk=row.subscription_id, status=SubscriptionStatus.FAILING
            ).update(status=SubscriptionStatus.ACTIVE, status_reason="")
        snapshot = {int(sid): int(seq) for sid, seq in delivery.payload.upserts}
        current = _lock_current_seqs(sorted(snapshot))
        _record_disclosures(row.member_id, sorted(sid for sid in snapshot if sid in current), now)
        # A signal that changed after this body was built: its own fan-out may have run before
        # this disclosure existed, so re-fan its current state to this member.
        changed = sorted(
            {
                current[sid][0]
                for sid, seq in snapshot.items()
                if sid in current and current[sid][0] != seq
            }
        )
        for seq in changed:
            OutboxEntry.objects.create(
                event=OutboxEvent.SIGNAL_UPSERTED, seq_from=seq, seq_to=seq, member_id=row.member_id
            )
        if changed:
            transaction.on_commit(dispatch.schedule_fan_out)
        disclosed_ids = sorted(sid for sid in snapshot if sid in current)
        audit.record(
            actor=SYSTEM,
            action=AuditAction.DELIVERY_SENT,
            target=f"delivery:{row.pk}",
            result_count=row.event_count,
            disclosed={delivery.member.slug: disclosed_ids} if disclosed_ids else None,
            owners={current[sid][1] for sid in disclosed_ids},
            details={
                "subscription": row.subscription_id,
                "webhook_id": row.webhook_id,
                "kind": row.kind,
                "attempt": row.attempts,
                "status_code": result.status_code,
                "events": row.event_count,
            },
        )
    return AttemptOutcome(DeliveryStatus.SUCCEEDED)


def _record_failure(delivery: Delivery, token: str, result: sender.SendResult) -> AttemptOutcome:
    schedule = retry_schedule()
    with transaction.atomic():
        row = _owned(delivery, token)
        if row is None:
            return AttemptOutcome("skipped", "lease lost")
        now = timezone.now()
        row.attempts += 1
        row.last_attempt_at = now
        row.last_status_code = result.status_code
        row.last_error = result.error[:500]
        row.lease_until = None
        row.lease_token = ""
        fields = [
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "lease_until",
            "lease_token",
            "status",
            "next_attempt_at",
            "enqueued_at",
        ]
        subscription = Subscription.objects.select_for_update().get(pk=row.subscription_id)
        countdown: float | None = None
        if result.gone:
            row.status = DeliveryStatus.DEAD
            subscription_disable(
                subscription=subscription,
                reason=f"the receiver answered 410 Gone (delivery {row.pk})",
                actor=SYSTEM,
            )
        elif row.kind == DeliveryKind.PING or row.attempts >= len(schedule):
            row.status = DeliveryStatus.DEAD
            if row.kind == DeliveryKind.BATCH:
                if subscription.status == SubscriptionStatus.ACTIVE:
                    subscription.status = SubscriptionStatus.FAILING
                    subscription.status_reason = (
                        f"delivery {row.pk} failed for its whole retry schedule"
                    )
                    subscription.save(update_fields=["status", "status_reason"])
                audit.record(
                    actor=SYSTEM,
                    action=AuditAction.DELIVERY_FAILED,
                    target=f"delivery:{row.pk}",
                    result_count=row.event_count,
                    details={
                        "subscription": row.subscription_id,
                        "webhook_id": row.webhook_id,
                        "attempts": row.attempts,
                        "last_error": row.last_error,
                    },
                )
        else:
            delay = schedule[row.attempts]
            if result.retry_after is not None:
                # The receiver asked for a pause: wait at least that long (at most a day).
                delay = max(delay, min(result.retry_after, 86400.0))
            row.next_attempt_at = now + timedelta(seconds=delay)
            if delay <= float(settings.BEACON_DELIVERY_COUNTDOWN_MAX_SECONDS):
                row.enqueued_at = row.next_attempt_at
                countdown = delay
            else:
                # Long waits are left to the sweeper: brokers handle far-future ETAs badly.
                row.enqueued_at = None
        row.save(update_fields=fields)
        if row.status == DeliveryStatus.PENDING and countdown is not None:
            _queue_after_commit([row.pk], countdown=countdown)
    return AttemptOutcome(row.status, row.last_error)


# -- the sweeper -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    outbox_pending: bool
    deliveries_requeued: int


def sweep(*, limit: int = 1000) -> SweepResult:
    """Re-queue work the broker lost: outbox rows not processed within
    ``BEACON_OUTBOX_GRACE_SECONDS`` get a ``fan_out``; due deliveries whose task was never
    queued, or was queued more than ``BEACON_DELIVERY_REQUEUE_SECONDS`` ago and is not in
    flight, get a ``deliver``. Rows are claimed with ``SKIP LOCKED``, so sweepers never
    re-queue the same delivery twice."""
    now = timezone.now()
    grace = timedelta(seconds=float(settings.BEACON_OUTBOX_GRACE_SECONDS))
    stale = OutboxEntry.objects.filter(
        processed_at__isnull=True, created_at__lte=now - grace
    ).exists()
    if stale:
        dispatch.schedule_fan_out()
    requeue = timedelta(seconds=float(settings.BEACON_DELIVERY_REQUEUE_SECONDS))
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .due(now)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - requeue))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)
            _queue_after_commit(ids)
    return SweepResult(outbox_pending=stale, deliveries_requeued=len(ids))

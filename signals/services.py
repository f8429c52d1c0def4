"""Signal workflows: submit, list, get, update, retract, match, text match and the feed.

Each validates, writes, audits and schedules fan-out in one transaction. Member-facing reads
start from ``Signal.objects.visible_to`` — nothing here reads signals any other way.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Member, SharingGroup
from client.auditchain import canonical_json
from exchange import audit, policy, sequences
from exchange.audit import Actor, AuditAction
from exchange.delivery import outbox
from exchange.delivery.models import OutboxEvent
from exchange.match_volume import match_volume_observe
from signals import bulk, types
from signals.models import (
    AudienceKind,
    Category,
    Disclosure,
    Indicator,
    Severity,
    Signal,
    SignalStatus,
    Tlp,
    audience_fields,
    new_bundle_id,
)
from signals.querysets import bigint_array, ids_in, receiving_context
from signals.serialization import (
    SignalRow,
    feedback_totals,
    owner_label,
    signal_out,
    signal_rows,
    tombstone_out,
)
from signals.types.base import Canonical, TypeValueError

ITEM_FIELDS = frozenset(
    {
        "type",
        "value",
        "category",
        "audience",
        "confidence",
        "severity",
        "tlp",
        "tags",
        "expires_at",
        "external_id",
        "lang",
        "quality",
    }
)
MATCH_FIELDS = frozenset(
    {
        "type",
        "value",
        "max_distance",
        "lang",
        "quality",
        "query_match_percent",
        "index_match_percent",
    }
)
MAX_TAGS = 20
SEVERITIES = frozenset(Severity.values)
TLPS = frozenset(Tlp.values)
MAX_TAG_CHARS = 64


class ItemErrors(Exception):
    """Some items are invalid; nothing was written. ``errors`` lists each as {index, field, detail}."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len({e['index'] for e in errors})} items are invalid")
        self.errors = errors


class NotFound(Exception):
    """The signal does not exist for this member (or it may not see it)."""


class PurposeNotAllowed(Exception):
    """The purpose cannot be used for this read (research reads return aggregates only)."""


@dataclass
class ParsedItem:
    index: int
    type: types.SignalType
    canonical: Canonical
    category: Category
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class SubmitResult:
    created: int
    updated: int
    signals: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "signals": self.signals}


# -- validation -----------------------------------------------------------------------------
class _Lookups:
    """Categories and audiences resolved once per batch."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.categories = {c.code: c for c in Category.objects.filter(active=True)}
        self.groups: dict[str, SharingGroup | None] = {}
        self.member_slugs: set[str] | None = None

    def group(self, slug: str) -> SharingGroup | None:
        if slug not in self.groups:
            self.groups[slug] = SharingGroup.objects.filter(slug=slug, members=self.member).first()
        return self.groups[slug]

    def known_members(self) -> set[str]:
        if self.member_slugs is None:
            self.member_slugs = set(Member.objects.values_list("slug", flat=True))
        return self.member_slugs


def _err(index: int, field_: str, detail: str) -> dict[str, Any]:
    return {"index": index, "field": field_, "detail": detail}


def _item_type(
    item: dict[str, Any], index: int, allowed: frozenset[str], errors: list[dict[str, Any]]
) -> types.SignalType | None:
    """Check an item's fields and resolve its type, adding an error for each problem."""
    if not allowed.issuperset(item):
        unknown = sorted(set(item) - allowed)
        errors.append(_err(index, unknown[0], f"unknown field(s): {', '.join(unknown)}"))
    type_ = types.get(item.get("type"))
    if type_ is None:
        errors.append(
            _err(index, "type", f"unknown type {item.get('type')!r}; see GET /api/v1/signal-types")
        )
    return type_


# Shared by every item shared with all members; only ever read (spread into each item's fields).
_AUDIENCE_ALL = audience_fields(AudienceKind.ALL, None, [])


def _parse_audience(
    raw: Any, lookups: _Lookups, index: int, errors: list[dict[str, Any]]
) -> dict[str, Any] | None:
    if raw in (None, "", "all"):
        return _AUDIENCE_ALL
    if not isinstance(raw, str):
        errors.append(
            _err(
                index,
                "audience",
                "audience must be 'all', 'group:<slug>' or 'members:<slug>,<slug>'",
            )
        )
        return None
    kind, _, rest = raw.partition(":")
    if kind == "group" and rest:
        group = lookups.group(rest)
        if group is None:
            errors.append(_err(index, "audience", f"you are not in a sharing group {rest!r}"))
            return None
        return audience_fields(AudienceKind.GROUP, group, [])
    if kind == "members" and rest:
        slugs = [s.strip() for s in rest.split(",") if s.strip()]
        unknown = sorted(set(slugs) - lookups.known_members())
        if not slugs or unknown:
            errors.append(
                _err(index, "audience", f"unknown members: {', '.join(unknown) or '(none named)'}")
            )
            return None
        return audience_fields(AudienceKind.MEMBERS, None, slugs)
    errors.append(
        _err(index, "audience", "audience must be 'all', 'group:<slug>' or 'members:<slug>,<slug>'")
    )
    return None


def _parse_expiry(
    raw: Any, category: Category | None, index: int, errors: list[dict[str, Any]], now: datetime
) -> datetime | None:
    if raw in (None, ""):
        if category is not None and category.default_ttl_days:
            return now + timedelta(days=category.default_ttl_days)
        return None
    value = parse_datetime(raw) if isinstance(raw, str) else None
    if value is None or value.tzinfo is None:
        errors.append(
            _err(index, "expires_at", "expires_at must be an ISO 8601 date-time with a time zone")
        )
        return None
    if value <= now:
        errors.append(_err(index, "expires_at", "expires_at must be in the future"))
        return None
    return value


def _clean_tags(raw: Any, seen: dict[tuple[Any, ...], list[str] | None]) -> list[str] | None:
    """``raw`` as a tag list without repeats, or None if it is not a valid one. Each distinct
    list is checked once per batch (``seen``); items sending the same tags share the result,
    which nothing mutates."""
    if not isinstance(raw, list):
        return None
    try:
        key = tuple(raw)
        if key in seen:
            return seen[key]
    except TypeError:  # an unhashable tag (a list or an object) is not a string anyway
        return None
    valid = len(raw) <= MAX_TAGS and all(
        isinstance(t, str) and 0 < len(t) <= MAX_TAG_CHARS for t in raw
    )
    seen[key] = list(dict.fromkeys(raw)) if valid else None
    return seen[key]


MAX_BUNDLE_HASHES = 8


def _expand_bundles(
    items: list[Any], errors: list[dict[str, Any]]
) -> list[tuple[int, Any, uuid.UUID | None]]:
    """Items as ``(index, item, bundle id)``: a media bundle (``{"hashes": {type: value, ...},
    ...}``) becomes one item per hash, sharing the other fields and a new bundle id."""
    out: list[tuple[int, Any, uuid.UUID | None]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "hashes" not in item:
            out.append((index, item, None))
            continue
        hashes = item["hashes"]
        if "type" in item or "value" in item:
            errors.append(_err(index, "hashes", "a bundle has 'hashes' instead of type and value"))
            continue
        if not isinstance(hashes, dict) or not 1 <= len(hashes) <= MAX_BUNDLE_HASHES:
            errors.append(
                _err(
                    index,
                    "hashes",
                    f"hashes maps 1-{MAX_BUNDLE_HASHES} signal types to values of one media item",
                )
            )
            continue
        bundle_id = new_bundle_id()
        common = {k: v for k, v in item.items() if k != "hashes"}
        for type_name, value in hashes.items():
            out.append((index, {**common, "type": type_name, "value": value}, bundle_id))
    return out


def parse_items(member: Member, items: Any, *, lookups: _Lookups | None = None) -> list[ParsedItem]:
    """Validate every item before anything is written. Raises ``ItemErrors`` listing every bad
    item by index and field."""
    if not isinstance(items, list) or not items:
        raise ItemErrors([_err(-1, "items", "send a non-empty list of items")])
    lookups = lookups or _Lookups(member)
    now = timezone.now()
    errors: list[dict[str, Any]] = []
    parsed: list[ParsedItem] = []
    tag_lists: dict[tuple[Any, ...], list[str] | None] = {}
    default_expiry: dict[int, datetime | None] = {}
    for index, item, bundle_id in _expand_bundles(items, errors):
        before = len(errors)
        if not isinstance(item, dict):
            errors.append(_err(index, "", "each item must be a JSON object"))
            continue
        if ITEM_FIELDS.issuperset(item):
            type_ = types.get(item.get("type"))
            if type_ is None:
                _item_type(item, index, ITEM_FIELDS, errors)
        else:
            type_ = _item_type(item, index, ITEM_FIELDS, errors)
        canonical = None
        if type_ is not None:
            try:
                canonical = type_.canonical(item)
            except TypeValueError as exc:
                field_name = (
                    f"hashes.{type_.name}" if bundle_id and exc.field == "value" else exc.field
                )
                errors.append(_err(index, field_name, exc.detail))
        category = lookups.categories.get(str(item.get("category")))
        if category is None:
            errors.append(
                _err(
                    index,
                    "category",
                    f"unknown category {item.get('category')!r}; see GET /api/v1/categories",
                )
            )
        raw_audience = item.get("audience")
        audience = (
            _AUDIENCE_ALL
            if raw_audience is None or raw_audience == "all"
            else _parse_audience(raw_audience, lookups, index, errors)
        )
        confidence = item.get("confidence", 50)
        if (
            not isinstance(confidence, int)
            or isinstance(confidence, bool)
            or not 0 <= confidence <= 100
        ):
            errors.append(_err(index, "confidence", "confidence must be an integer from 0 to 100"))
        severity = item.get("severity", Severity.MEDIUM)
        if severity not in SEVERITIES:
            errors.append(
                _err(index, "severity", f"severity must be one of {', '.join(Severity.values)}")
            )
        tlp = item.get("tlp", Tlp.AMBER)
        if tlp not in TLPS:
            errors.append(_err(index, "tlp", f"tlp must be one of {', '.join(Tlp.values)}"))
        tags = _clean_tags(item.get("tags", []), tag_lists)
        if tags is None:
            errors.append(
                _err(
                    index,
                    "tags",
                    f"tags must be a list of at most {MAX_TAGS} strings of 1-{MAX_TAG_CHARS} characters",
                )
            )
        external_id = item.get("external_id", "")
        if not isinstance(external_id, str) or len(external_id) > 200:
            errors.append(
                _err(index, "external_id", "external_id must be a string of at most 200 characters")
            )
        raw_expiry = item.get("expires_at")
        if raw_expiry is None and category is not None:
            if category.id not in default_expiry:
                default_expiry[category.id] = _parse_expiry(None, category, index, errors, now)
            expires_at = default_expiry[category.id]
        else:
            expires_at = _parse_expiry(raw_expiry, category, index, errors, now)
        if (
            len(errors) == before
            and type_ is not None
            and canonical is not None
            and category is not None
            and audience is not None
        ):
            parsed.append(
                ParsedItem(
                    index=index,
                    type=type_,
                    canonical=canonical,
                    category=category,
                    fields={
                        **audience,
                        "confidence": confidence,
                        "severity": severity,
                        "tlp": tlp,
                        "tags": tags,
                        "external_id": external_id,
                        "expires_at": expires_at,
                        "quality": canonical.extra.get("quality"),
                        "lang": canonical.extra.get("lang") or "",
                        "bundle_id": bundle_id,
                    },
                )
            )
    if errors:
        raise ItemErrors(errors)
    return parsed


# -- submit ---------------------------------------------------------------------------------
@transaction.atomic
def signal_submit(
    *,
    member: Member,
    items: Any,
    actor: Actor,
    action: AuditAction = AuditAction.SIGNAL_SUBMIT,
    request_digest: str | None = None,
) -> SubmitResult:
    """Upsert a batch all-or-nothing: any invalid item raises ``ItemErrors`` and nothing is
    written. One signal per (indicator, owner); later items in a batch win over earlier ones.
    The audit event carries ``request_digest`` (the SHA-256 of the request body the items came
    in, which the API has computed already), else a digest of the items."""
    policy.check_can_submit(member=member)
    with bulk.gc_paused():
        parsed = parse_items(member, items)
        written = bulk.write(member=member, parsed=parsed)
    answers = []
    shared: dict[int, tuple[str, str]] = {}
    signals = written.signals
    for item, indicator_id in zip(parsed, written.indicator_ids, strict=True):
        signal_id, new = signals[indicator_id]
        type_name = item.type.name
        answer = {
            "id": signal_id,
            "type": type_name,
            "indicator_id": indicator_id,
            "status": "created" if new else "updated",
        }
        if new:
            shared[signal_id] = (type_name, item.category.code)
        bundle_id = item.fields.get("bundle_id")
        if bundle_id:
            answer["bundle_id"] = str(bundle_id)
        answers.append(answer)
    outbox.add(event=OutboxEvent.SIGNAL_UPSERTED, seq_from=written.seq_from, seq_to=written.seq_to)
    audit.record(
        actor=actor,
        action=action,
        params=request_digest or _items_digest_source(items),
        result_count=len(written.signals),
        details={
            "created": written.created,
            "updated": written.updated,
            # New signals by "type|category": the transparency report's sharing figures.
            "shared": dict(
                sorted((f"{t}|{c}", n) for (t, c), n in Counter(shared.values()).items())
            ),
            "seq_from": written.seq_from,
            "seq_to": written.seq_to,
        },
    )
    return SubmitResult(created=written.created, updated=written.updated, signals=answers)


def _items_digest_source(items: Any) -> str:
    # The audit keeps a digest of what was asked, never the values themselves.
    return hashlib.sha256(canonical_json(items).encode()).hexdigest()


def signal_reannounce(*, queryset: Any) -> int:
    """Give every live signal in ``queryset`` a new feed seq and fan it out again, because who
    may see it changed (a member left its sharing group, a member's categories changed). The
    feed and fan-out then send tombstones to members that received it and may no longer see it.
    Call inside the transaction that made the change."""
    ids = list(queryset.filter(policy.live_q()).order_by("pk").values_list("pk", flat=True))
    if not ids:
        return 0
    start = sequences.allocate(sequences.FEED, len(ids))
    now = timezone.now()
    rows = [Signal(pk=pk, seq=start + i, updated_at=now) for i, pk in enumerate(ids)]
    Signal.objects.bulk_update(rows, ["seq", "updated_at"], batch_size=1000)
    outbox.add(event=OutboxEvent.SIGNAL_UPSERTED, seq_from=start, seq_to=start + len(ids) - 1)
    return len(ids)


# -- reads ----------------------------------------------------------------------------------
def record_disclosures(*, member_id: int, signal_ids: list[int], channel: str) -> None:
    """Remember that these signals reached this member (first time only). Tombstones later go
    to exactly the members recorded here."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO signals_disclosure (member_id, signal_id, channel, first_at) "
                "SELECT %s, unnest(%s::bigint[]), %s, now() ON CONFLICT DO NOTHING",
                [member_id, bigint_array(signal_ids), channel],
            )
        return
    Disclosure.objects.bulk_create(
        [Disclosure(member_id=member_id, signal_id=sid, channel=channel) for sid in signal_ids],
        ignore_conflicts=True,
        batch_size=2000,
    )


def _disclose(
    member: Member, signals: Iterable[Signal | SignalRow], channel: str
) -> tuple[dict[str, list[int]], set[str]]:
    """Record first disclosures of other members' signals; return the audit's view of them.
    Rows carry their owner's slug; a model instance's owner is loaded."""
    member_id = member.pk
    others = [s for s in signals if s.owner_id != member_id]
    ids = sorted({s.pk for s in others})
    if ids:
        record_disclosures(member_id=member_id, signal_ids=ids, channel=channel)
    slugs = {s.owner_slug if isinstance(s, SignalRow) else s.owner.slug for s in others}
    return ({member.slug: ids} if ids else {}), slugs


def _base(member: Member, purpose: str) -> Any:
    return Signal.objects.visible_to(member, purpose).select_related(
        "indicator__frames", "owner", "category"
    )


@transaction.atomic
def signal_get(*, member: Member, purpose: str, signal_id: int, actor: Actor) -> dict[str, Any]:
    signal = _base(member, purpose).filter(pk=signal_id).first()
    if signal is None:
        raise NotFound()
    disclosed, owners = _disclose(member, [signal], "get")
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_GET,
        purpose=purpose,
        target=f"signal:{signal.pk}",
        result_count=1,
        disclosed=disclosed,
        owners=owners,
    )
    body = signal_out(
        SignalRow.of(signal),
        viewer_id=member.pk,
        feedback=feedback_totals([signal.pk]).get(signal.pk),
    )
    if not policy.discloses_values(purpose):
        body["value"] = None
    return body


@transaction.atomic
def signal_list(
    *,
    member: Member,
    actor: Actor,
    after_id: int = 0,
    limit: int = 100,
    filters: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """The member's own signals, oldest first, with feedback totals."""
    qs = (
        Signal.objects.filter(owner=member, pk__gt=after_id)
        .select_related("indicator__frames", "owner", "category")
        .order_by("pk")
    )
    filters = filters or {}
    if filters.get("type"):
        qs = qs.filter(indicator__type=filters["type"])
    if filters.get("category"):
        qs = qs.filter(category__code=filters["category"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    totals = feedback_totals(s.pk for s in rows)
    audit.record(
        actor=actor, action=AuditAction.SIGNAL_LIST, params=filters, result_count=len(rows)
    )
    return [
        signal_out(SignalRow.of(s), viewer_id=member.pk, feedback=totals.get(s.pk)) for s in rows
    ], (rows[-1].pk if more else None)


def _own_signal(member: Member, signal_id: int) -> Signal:
    signal = Signal.objects.select_for_update().filter(pk=signal_id, owner=member).first()
    if signal is None:
        raise NotFound()
    return signal


UPDATABLE = {"category", "tags", "confidence", "severity", "audience", "expires_at", "tlp"}


@transaction.atomic
def signal_update(*, member: Member, signal_id: int, changes: Any, actor: Actor) -> dict[str, Any]:
    """The owner changes category, tags, confidence, severity, audience, TLP or expiry."""
    signal = _own_signal(member, signal_id)
    if not isinstance(changes, dict) or not changes:
        raise ItemErrors([_err(0, "", "send a JSON object with the fields to change")])
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise ItemErrors(
            [_err(0, unknown[0], f"these fields cannot be changed: {', '.join(unknown)}")]
        )
    value: Any = signal.indicator.value
    if signal.indicator.key_version is not None:
        # Identifier values are stored peppered; any well-formed digest re-validates the rest.
        value = "0" * 64
    elif hasattr(signal.indicator, "frames"):
        value = signal.indicator.frames.text  # video hashes: the value is the frames' digest
    item = {
        "type": signal.indicator.type,
        "value": value,
        "category": signal.category.code,
        "audience": signal.audience,
        "confidence": signal.confidence,
        "severity": signal.severity,
        "tlp": signal.tlp,
        "tags": signal.tags,
        **({"quality": signal.quality} if signal.quality is not None else {}),
        **({"lang": signal.lang} if signal.lang else {}),
        **changes,
    }
    parsed = parse_items(member, [item])[0]
    fields = dict(parsed.fields)
    if "expires_at" not in changes:
        fields["expires_at"] = signal.expires_at
    for name in (
        "audience",
        "audience_kind",
        "audience_group",
        "audience_members",
        "confidence",
        "severity",
        "tlp",
        "tags",
        "expires_at",
    ):
        setattr(signal, name, fields[name])
    signal.category = parsed.category
    signal.seq = sequences.allocate(sequences.FEED)
    signal.updated_at = timezone.now()
    signal.save()
    outbox.add(event=OutboxEvent.SIGNAL_UPSERTED, seq_from=signal.seq, seq_to=signal.seq)
    bundle_updated = _update_bundle(signal, set(changes))
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_UPDATE,
        target=f"signal:{signal.pk}",
        params=changes,
        result_count=1 + len(bundle_updated),
        details={
            "fields": sorted(changes),
            **({"bundle_updated": bundle_updated} if bundle_updated else {}),
        },
    )
    return signal_out(
        SignalRow.of(signal),
        viewer_id=member.pk,
        feedback=feedback_totals([signal.pk]).get(signal.pk),
    )


#: What the signals of one media bundle share: a change to one applies to all.
BUNDLE_SHARED: dict[str, tuple[str, ...]] = {
    "category": ("category",),
    "tlp": ("tlp",),
    "expires_at": ("expires_at",),
    "audience": ("audience", "audience_kind", "audience_group", "audience_members"),
}


def _rewrite_bundle(signal: Signal, event: str, values: dict[str, Any]) -> list[int]:
    """Set ``values`` on the other active signals of ``signal``'s media bundle (same owner),
    give them new feed sequence numbers and announce them as ``event``. Returns their ids."""
    if signal.bundle_id is None or not values:
        return []
    siblings = list(
        Signal.objects.select_for_update()
        .filter(bundle_id=signal.bundle_id, owner_id=signal.owner_id, status=SignalStatus.ACTIVE)
        .exclude(pk=signal.pk)
        .order_by("pk")
    )
    if not siblings:
        return []
    start = sequences.allocate(sequences.FEED, len(siblings))
    for offset, sibling in enumerate(siblings):
        for column, value in values.items():
            setattr(sibling, column, value)
        sibling.seq = start + offset
    Signal.objects.bulk_update(siblings, [*values, "seq"])
    outbox.add(event=event, seq_from=start, seq_to=start + len(siblings) - 1)
    return [s.pk for s in siblings]


def _update_bundle(signal: Signal, changed: set[str]) -> list[int]:
    """Apply the shared fields just changed on ``signal`` to the rest of its bundle."""
    columns = [c for name in sorted(changed & set(BUNDLE_SHARED)) for c in BUNDLE_SHARED[name]]
    if not columns:
        return []
    values = {c: getattr(signal, c) for c in columns}
    return _rewrite_bundle(
        signal, OutboxEvent.SIGNAL_UPSERTED, {**values, "updated_at": signal.updated_at}
    )


def _retract_bundle(signal: Signal, reason: str, now: datetime) -> list[int]:
    """Retract the other active signals of the signal's media bundle (same owner): the hashes
    of one media item share one lifecycle. Returns their ids."""
    return _rewrite_bundle(
        signal,
        OutboxEvent.SIGNAL_RETRACTED,
        {
            "status": SignalStatus.RETRACTED,
            "retracted_at": now,
            "retract_reason": reason,
            "updated_at": now,
        },
    )


@transaction.atomic
def signal_retract(*, signal: Signal, reason: str, actor: Actor) -> Signal:
    """Retract a signal (owner, or an exchange admin after an appeal). A tombstone reaches every
    member it was disclosed to, by feed and by webhook."""
    reason = (reason or "").strip()
    if not reason:
        raise ItemErrors(
            [_err(0, "reason", "a retraction needs a reason, e.g. 'user appeal upheld'")]
        )
    if len(reason) > 500:
        raise ItemErrors([_err(0, "reason", "the reason is at most 500 characters")])
    now = timezone.now()
    signal.status = SignalStatus.RETRACTED
    signal.retracted_at = now
    signal.retract_reason = reason
    signal.updated_at = now
    signal.seq = sequences.allocate(sequences.FEED)
    signal.save(update_fields=["status", "retracted_at", "retract_reason", "updated_at", "seq"])
    outbox.add(event=OutboxEvent.SIGNAL_RETRACTED, seq_from=signal.seq, seq_to=signal.seq)
    bundle_retracted = _retract_bundle(signal, reason, now)
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_RETRACT,
        target=f"signal:{signal.pk}",
        result_count=1 + len(bundle_retracted),
        # The reason and who retracted feed the transparency report's retraction figures.
        details={
            **({"bundle_retracted": bundle_retracted} if bundle_retracted else {}),
            "owner": signal.owner.slug,
            "by": "owner"
            if actor.member is not None and actor.member.pk == signal.owner_id
            else "exchange",
            "reason": reason,
            "category": signal.category.code,
        },
        owners={signal.owner.slug},
    )
    return signal


@transaction.atomic
def signal_retract_own(*, member: Member, signal_id: int, reason: str, actor: Actor) -> Signal:
    return signal_retract(signal=_own_signal(member, signal_id), reason=reason, actor=actor)


# -- matching -------------------------------------------------------------------------------
PERCEPTUAL = frozenset({"hamming", "vpdq"})
NO_OPTIONS: Mapping[str, Any] = {}


def _parse_match_items(
    items: Any,
) -> list[tuple[int, types.SignalType, Canonical, Mapping[str, Any]]]:
    if not isinstance(items, list) or not items:
        raise ItemErrors([_err(-1, "items", "send a non-empty list of items")])
    errors: list[dict[str, Any]] = []
    parsed = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(_err(index, "", "each item must be a JSON object"))
            continue
        if len(item) == 2 and "value" in item:
            # The common item, {type, value} of an equality type: nothing else to check.
            type_ = types.get(item.get("type"))
            if type_ is not None and type_.match_kind not in PERCEPTUAL:
                try:
                    parsed.append((index, type_, type_.canonical(item), NO_OPTIONS))
                except TypeValueError as exc:
                    errors.append(_err(index, exc.field, exc.detail))
                continue
        before = len(errors)
        type_ = _item_type(item, index, MATCH_FIELDS, errors)
        if type_ is None or len(errors) > before:
            continue
        try:
            canonical = type_.canonical(item)
            options: dict[str, Any] = {}
            if type_.match_kind in PERCEPTUAL:
                from signals.types.pdq import max_distance

                options["max_distance"] = max_distance(item)
            elif "max_distance" in item:
                raise TypeValueError(
                    f"max_distance applies only to perceptual hashes, not {type_.name}",
                    field="max_distance",
                )
            if type_.match_kind == "vpdq":
                from signals.types import vpdq

                options["query_match_percent"] = vpdq.percent(
                    item, "query_match_percent", vpdq.DEFAULT_QUERY_PERCENT
                )
                options["index_match_percent"] = vpdq.percent(
                    item, "index_match_percent", vpdq.DEFAULT_INDEX_PERCENT
                )
            else:
                for name in ("query_match_percent", "index_match_percent"):
                    if name in item:
                        raise TypeValueError(
                            f"{name} applies only to vpdq, not {type_.name}", field=name
                        )
        except TypeValueError as exc:
            errors.append(_err(index, exc.field, exc.detail))
            continue
        parsed.append((index, type_, canonical, options))
    if errors:
        raise ItemErrors(errors)
    return parsed


def _visible_live_rows(member: Member, purpose: str, indicator_ids: list[int]) -> list[SignalRow]:
    """The live signals of these indicators that ``member`` may see, as rows."""
    out: list[SignalRow] = []
    for start in range(0, len(indicator_ids), 5000):
        rows, _ = signal_rows(
            Signal.objects.visible_to(member, purpose)
            .live()
            .filter(ids_in("indicator_id", indicator_ids[start : start + 5000]))
            .order_by("pk")
        )
        out.extend(rows)
    return out


def _visible_bundles(
    member: Member, purpose: str, matched: Iterable[SignalRow]
) -> dict[Any, list[SignalRow]]:
    """The live signals ``member`` may see in the media bundles of the matched signals."""
    bundle_ids = sorted({s.bundle_id for s in matched if s.bundle_id is not None}, key=str)
    out: dict[Any, list[SignalRow]] = defaultdict(list)
    if not bundle_ids:
        return out
    rows, _ = signal_rows(
        Signal.objects.visible_to(member, purpose)
        .live()
        .filter(bundle_id__in=bundle_ids)
        .order_by("pk")
    )
    for signal in rows:
        out[signal.bundle_id].append(signal)
    return out


def _bundle_siblings(
    visible: list[SignalRow], bundles: dict[Any, list[SignalRow]]
) -> list[dict[str, Any]]:
    """The other hashes of the matched signals' media, so a member that computes one format
    learns the others: type and value (never a peppered identifier's value)."""
    seen = {s.pk for s in visible}
    out = []
    for signal in visible:
        for sibling in bundles.get(signal.bundle_id, []) if signal.bundle_id else []:
            if sibling.pk in seen:
                continue
            seen.add(sibling.pk)
            out.append(_sibling_out(sibling))
    return out


def _sibling_out(signal: SignalRow) -> dict[str, Any]:
    type_ = types.get(signal.type)
    body: dict[str, Any] = {
        "id": signal.pk,
        "type": signal.type,
        "indicator_id": signal.indicator_id,
        "value": None if (type_ is None or type_.peppered) else signal.value,
    }
    if type_ is not None and type_.match_kind == "vpdq":
        body["value"] = signal.frames
    if signal.quality is not None:
        body["quality"] = signal.quality
    return body


def _match_signal_out(
    signal: SignalRow, viewer_id: int, totals: Mapping[int, dict[str, int]]
) -> dict[str, Any]:
    return {
        "id": signal.pk,
        "type": signal.type,
        "owner": owner_label(signal, viewer_id),
        "category": signal.category_code,
        "confidence": signal.confidence,
        "severity": signal.severity,
        "tlp": signal.tlp,
        "tags": signal.tags,
        "created_at": signal.created_at,
        "expires_at": signal.expires_at,
        "bundle_id": str(signal.bundle_id) if signal.bundle_id else None,
        "feedback": totals.get(signal.pk, {}),
        **_quality_out(signal),
    }


def _quality_out(signal: SignalRow) -> dict[str, Any]:
    """Perceptual hashes carry their quality; one below the floor is flagged, never hidden."""
    if signal.quality is None:
        return {}
    return {
        "quality": signal.quality,
        "low_quality": signal.quality < settings.BEACON_PDQ_QUALITY_FLOOR,
    }


@bulk.gc_paused()
@transaction.atomic
def signal_match(*, member: Member, purpose: str, items: Any, actor: Actor) -> dict[str, Any]:
    """Match a member's values against every live signal it may see. Equality types are
    proposed by the exact candidate index and confirmed against the stored values; PDQ and vPDQ
    go through their indexes. ``research`` answers aggregates only."""
    from signals.matching import exact, video
    from signals.matching import hamming as hamming_index

    parsed = _parse_match_items(items)
    match_volume_observe(member=member, values=len(parsed), actor=actor)
    # (item index) -> [(indicator_id, distance | None)]
    hits: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    # (item index, indicator id) -> what else the match reports (vPDQ percentages)
    extras: dict[tuple[int, int], dict[str, Any]] = {}
    # (type, stored value) -> the items asking for it
    lookups: dict[tuple[str, str], list[int]] = defaultdict(list)
    hamming: list[tuple[int, types.SignalType, Canonical, Mapping[str, Any]]] = []
    videos: list[tuple[int, types.SignalType, Canonical, Mapping[str, Any]]] = []
    for index, type_, canonical, options in parsed:
        if type_.match_kind == "hamming":
            hamming.append((index, type_, canonical, options))
            continue
        if type_.match_kind == "vpdq":
            videos.append((index, type_, canonical, options))
            continue
        for value in type_.lookup_values(canonical):
            for name in (type_.name, *type_.aliases):
                lookups[(name, value)].append(index)
    # Indicators whose hits are recorded: the perceptual indexes' now, the exact ones when
    # their stored value is confirmed below.
    recorded: set[int] = set()
    for index, ind_id, distance in hamming_index.hamming_matches(hamming):
        hits[index].append((ind_id, distance))
        recorded.add(ind_id)
    for index, ind_id, info in video.vpdq_matches(videos):
        hits[index].append((ind_id, None))
        extras[(index, ind_id)] = info
        recorded.add(ind_id)
    candidates = exact.index().candidates(list(lookups))

    signals_by_indicator: dict[int, list[SignalRow]] = defaultdict(list)
    ids = sorted(candidates | recorded)
    for signal in _visible_live_rows(member, purpose, ids):
        ind_id = signal.indicator_id
        if ind_id not in recorded:
            asking = lookups.get((signal.type, signal.value))
            if asking is None:
                continue  # a candidate whose key collided with an asked value
            recorded.add(ind_id)
            for index in asking:
                hits[index].append((ind_id, None))
        signals_by_indicator[ind_id].append(signal)
    matched = {s.pk: s for group in signals_by_indicator.values() for s in group}
    bundles = _visible_bundles(member, purpose, matched.values())

    if not policy.discloses_values(purpose):
        by_category: dict[str, int] = defaultdict(int)
        for s in matched.values():
            by_category[s.category_code] += 1
        items_matched = sum(
            1
            for index, _, _, _ in parsed
            if any(signals_by_indicator.get(i) for i, _ in hits.get(index, []))
        )
        audit.record(
            actor=actor,
            action=AuditAction.SIGNAL_MATCH,
            purpose=purpose,
            params=_items_digest_source(items),
            result_count=len(matched),
            details={"items": len(parsed), "items_matched": items_matched},
        )
        return {
            "aggregate": {
                "items": len(parsed),
                "items_matched": items_matched,
                "signals_matched": len(matched),
                "by_category": dict(sorted(by_category.items())),
            }
        }

    # Bundle siblings leave with the match: they are disclosed (and audited) too.
    given = {**matched, **{s.pk: s for group in bundles.values() for s in group}}
    totals = feedback_totals(matched)
    viewer_id = member.pk
    results = []
    with _overlapped():
        # The disclosure insert runs in the database while the answers are built.
        disclosed, owners = _disclose(member, given.values(), "match")
        for index, _, canonical, _ in parsed:
            matches = []
            for ind_id, dist in sorted(hits.get(index, []), key=lambda h: (h[1] or 0, h[0])):
                visible = signals_by_indicator.get(ind_id)
                if not visible:
                    continue
                entry: dict[str, Any] = {
                    "indicator_id": ind_id,
                    "signals": [_match_signal_out(s, viewer_id, totals) for s in visible],
                }
                if dist is not None:
                    entry["distance"] = dist
                entry.update(extras.get((index, ind_id), {}))
                siblings = _bundle_siblings(visible, bundles)
                if siblings:
                    entry["bundle"] = siblings
                matches.append(entry)
            result: dict[str, Any] = {"index": index, "matches": matches}
            query_quality = canonical.extra.get("quality")
            if query_quality is not None:
                result["low_quality"] = query_quality < settings.BEACON_PDQ_QUALITY_FLOOR
            results.append(result)
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_MATCH,
        purpose=purpose,
        params=_items_digest_source(items),
        result_count=len(given),
        disclosed=disclosed,
        owners=owners,
        details={
            "items": len(parsed),
            "items_matched": sum(1 for r in results if r["matches"]),
        },
    )
    return {"results": results}


@transaction.atomic
def signal_match_text(
    *, member: Member, purpose: str, text: Any, lang: Any, actor: Actor
) -> dict[str, Any]:
    """The shared keywords that occur in ``text``, with character spans in the original text."""
    from signals.matching import keywords

    if not isinstance(text, str) or not text.strip():
        raise ItemErrors([_err(0, "text", "text must be a non-empty string")])
    if len(text) > settings.BEACON_MAX_TEXT_CHARS:
        raise ItemErrors(
            [_err(0, "text", f"text is at most {settings.BEACON_MAX_TEXT_CHARS} characters")]
        )
    if lang is not None and not isinstance(lang, str):
        raise ItemErrors([_err(0, "lang", "lang must be a BCP-47 language tag")])
    occurrences = keywords.find(text)
    ids = sorted({o.indicator_id for o in occurrences})
    visible: dict[int, list[SignalRow]] = defaultdict(list)
    wanted = str(lang).lower().split("-")[0] if lang else ""
    for s in _visible_live_rows(member, purpose, ids):
        if not wanted or not s.lang or s.lang.split("-")[0] == wanted:
            visible[s.indicator_id].append(s)
    matched = {s.pk: s for group in visible.values() for s in group}
    if not policy.discloses_values(purpose):
        audit.record(
            actor=actor,
            action=AuditAction.SIGNAL_MATCH_TEXT,
            purpose=purpose,
            params={"chars": len(text)},
            result_count=len(matched),
        )
        return {
            "aggregate": {
                "keywords_matched": len(
                    {o.indicator_id for o in occurrences if visible.get(o.indicator_id)}
                ),
                "signals_matched": len(matched),
            }
        }
    totals = feedback_totals(matched)
    results = [
        {
            "keyword": o.keyword,
            "indicator_id": o.indicator_id,
            "start": o.start,
            "end": o.end,
            "signals": [_match_signal_out(s, member.pk, totals) for s in visible[o.indicator_id]],
        }
        for o in occurrences
        if visible.get(o.indicator_id)
    ]
    disclosed, owners = _disclose(member, matched.values(), "match")
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_MATCH_TEXT,
        purpose=purpose,
        params={"sha256": hashlib.sha256(text.encode()).hexdigest()},
        result_count=len(matched),
        disclosed=disclosed,
        owners=owners,
    )
    return {"matches": results}


# -- the feed -------------------------------------------------------------------------------
@contextmanager
def _overlapped() -> Iterator[None]:
    """On PostgreSQL, statements sent in the block run while Python carries on (psycopg's
    pipeline mode); the block's end waits for them and raises their errors. Elsewhere, nothing."""
    if connection.vendor != "postgresql" or connection.connection is None:
        yield
        return
    with connection.connection.pipeline():
        yield


@dataclass
class FeedPage:
    events: list[dict[str, Any]]
    next_cursor: dict[str, Any]
    more: bool


@bulk.gc_paused()
@transaction.atomic
def signal_feed(
    *, member: Member, purpose: str, cursor: dict[str, Any] | None, limit: int, actor: Actor
) -> FeedPage:
    """Every change visible to ``member`` after the cursor, in seq order: ``upsert`` for signals
    it may see now, ``delete`` for signals it was given before and may no longer see
    (retracted, expired, out of its audience). Without a cursor it replays every live signal."""
    if not policy.discloses_values(purpose):
        raise PurposeNotAllowed(
            "The research purpose returns aggregates only; the feed discloses signals."
        )
    if cursor is None:
        cursor = {"after": 0, "replay": sequences.current(sequences.FEED), "m": member.pk}
    after, replay_until = int(cursor.get("after", 0)), int(cursor.get("replay", 0))
    context = receiving_context(member)
    group_ids, category_ids = context
    now = timezone.now()
    # Whether the member holds each row now is decided by the policy's own filter, in SQL.
    holds = policy.holds_q(member, group_ids=group_ids, category_ids=category_ids, at=now)
    rows, flags = signal_rows(
        Signal.objects.visible_or_given(member, purpose, at=now, context=context)
        .filter(seq__gt=after)
        .annotate(feed_holds=ExpressionWrapper(holds, output_field=BooleanField()))
        .order_by("seq")[: limit + 1],
        extra=("feed_holds",),
    )
    more = len(rows) > limit
    rows, flags = rows[:limit], flags[:limit]
    upserts = [s for s, (held,) in zip(rows, flags, strict=True) if held]
    totals = feedback_totals([s.pk for s in upserts])
    events: list[dict[str, Any]] = []
    viewer_id = member.pk
    with _overlapped():
        # The disclosure insert runs in the database while the events are built.
        disclosed, owners = _disclose(member, upserts, "feed")
        for s, (held,) in zip(rows, flags, strict=True):
            if held:
                events.append(
                    {
                        "seq": s.seq,
                        "op": "upsert",
                        "signal": signal_out(s, viewer_id=viewer_id, feedback=totals.get(s.pk)),
                    }
                )
            elif s.seq > replay_until:
                events.append({"seq": s.seq, "op": "delete", "signal": tombstone_out(s)})
    last = rows[-1].seq if rows else after
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_FEED,
        purpose=purpose,
        params={"after": after, "limit": limit},
        result_count=len(events),
        disclosed=disclosed,
        owners=owners,
    )
    return FeedPage(
        events=events,
        next_cursor={"after": last, "replay": replay_until, "m": member.pk},
        more=more,
    )


# -- administration -------------------------------------------------------------------------
@transaction.atomic
def category_save(
    *, category: Category, created: bool, fields: Iterable[str], actor: Actor
) -> Category:
    """Save a taxonomy category edited by an exchange administrator, audited. Requiring more
    attestations can take the category away from members: its signals are re-announced, so
    they receive tombstones for what they may no longer see."""
    category.full_clean()
    category.save()
    if not created and "required_attestations" in set(fields):
        signal_reannounce(queryset=Signal.objects.filter(category=category))
    audit.record(
        actor=actor,
        action=AuditAction.CATEGORY_CHANGE,
        target=f"category:{category.code}",
        details={"operation": "create" if created else "update", "fields": sorted(set(fields))},
    )
    return category


def indicator_lookup_values(
    *, type_name: str, raw: str, platform: str = "", region: str = ""
) -> tuple[str, list[str]]:
    """The stored forms a value pasted by an administrator may have, and the type it was read
    as. A raw email, phone number or username is normalised and hashed here, exactly as the
    client does, then peppered under every active version: the raw value is never stored."""
    from client.normalize import NormalizationError, identifier_digest

    kind = types.get(type_name)
    if kind is None:
        raise ItemErrors([_err(0, "type", f"unknown signal type {type_name!r}")])
    raw = raw.strip()
    if not raw:
        raise ItemErrors([_err(0, "value", "paste a value to search for")])
    item: dict[str, Any] = {"value": raw}
    if kind.peppered and not (len(raw) == 64 and all(c in "0123456789abcdef" for c in raw)):
        try:
            item["value"] = identifier_digest(
                type_name, raw, platform=platform or None, region=region or None
            )
        except NormalizationError as exc:
            # The message may quote the value; a raw identifier is never echoed back.
            detail = str(exc).replace(raw, "the value")
            raise ItemErrors([_err(0, "value", detail)]) from exc
    elif not kind.peppered and type_name in {"md5", "sha1", "sha256", "pdq"}:
        item["value"] = raw.lower()
    try:
        canonical = kind.canonical(item)
    except TypeValueError as exc:
        raise ItemErrors([_err(0, exc.field, exc.detail.replace(raw, "the value"))]) from exc
    return type_name, kind.lookup_values(canonical)


@transaction.atomic
def indicator_search(
    *, type_name: str, raw: str, actor: Actor, platform: str = "", region: str = ""
) -> list[int]:
    """Find the indicators a pasted value stands for (an administrator's search). Audited
    with the type and the number found; neither the value nor a digest of it is recorded."""
    type_name, values = indicator_lookup_values(
        type_name=type_name, raw=raw, platform=platform, region=region
    )
    ids = list(
        Indicator.objects.filter(type=type_name, value__in=values).values_list("pk", flat=True)
    )
    audit.record(
        actor=actor,
        action=AuditAction.ADMIN_ACTION,
        target="indicator:search",
        result_count=len(ids),
        details={"operation": "indicator.search", "type": type_name},
    )
    return ids

"""TAXII reads and the STIX export: services that start from ``Signal.objects.visible_to``,
record first disclosures and write one audit event per request.

A collection holds, for its viewer:

- one ``indicator`` per live signal the viewer may see (``visible_to(member, "detection")
  .live()``), in its current version (``modified`` = the signal's last change);
- a revoked version (``revoked: true``) of every signal the viewer owns or was given before and
  may no longer use — retracted, expired or out of its audience — so consumers drop it;
- the objects those indicators reference: the owners' identities, the TLP 2.0 markings,
  Beacon's identity and its extension definition.

Objects are ordered by ``date_added`` (a signal's last change; for the referenced objects, the
first change among the indicators that reference them), then by kind and id, which is the
order that ``next`` pages through and ``added_after`` filters on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Min, Q, QuerySet

from accounts.models import Member, Purpose
from exchange import audit, jsonio
from exchange.audit import Actor, AuditAction
from signals import stix
from signals.models import Disclosure, Signal
from signals.services import _disclose

PURPOSE = Purpose.DETECTION.value
CHANNEL = "taxii"
VERSION_KEYWORDS = frozenset({"first", "last", "all"})
# Sort keys: (date_added, rank, n). Referenced objects sort before indicators of the same
# instant, so a consumer reading in order meets an identity before the indicators citing it.
SortKey = tuple[datetime, int, int]
_RANK_REFERENCED = 0
_RANK_INDICATOR = 1
_ANONYMOUS_ORDER = 7
_MEMBER_ORDER_BASE = 100


class NotFound(Exception):
    """The collection or object does not exist for this member (or it may not see it)."""


# -- collections ----------------------------------------------------------------------------
ALL_COLLECTION_ID = str(uuid.uuid5(stix.NAMESPACE, "collection:all"))


def group_collection_id(slug: str) -> str:
    return str(uuid.uuid5(stix.NAMESPACE, f"collection:group:{slug}"))


@dataclass(frozen=True)
class Collection:
    """One member's view: everything it may see, or the signals shared with one of its groups."""

    id: str
    title: str
    description: str
    alias: str
    group_id: int | None = None

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "alias": self.alias,
            "can_read": True,
            "can_write": False,
            "media_types": [stix.STIX_MEDIA_TYPE],
        }


def taxii_collections(*, member: Member) -> list[Collection]:
    """The collections ``member`` may read: all it may see, then one per sharing group."""
    out = [
        Collection(
            id=ALL_COLLECTION_ID,
            title="All signals",
            description="Every signal you may see for detection, and revocations of those you "
            "were given that you may no longer use.",
            alias="all",
        )
    ]
    for group in member.sharing_groups.order_by("slug"):
        out.append(
            Collection(
                id=group_collection_id(group.slug),
                title=group.name,
                description=f"Signals shared with the sharing group {group.slug!r}.",
                alias=f"group-{group.slug}",
                group_id=group.pk,
            )
        )
    return out


def taxii_collection(*, member: Member, collection_id: str) -> Collection:
    for collection in taxii_collections(member=member):
        if collection.id == collection_id:
            return collection
    raise NotFound()


# -- selecting objects ----------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectQuery:
    """The filters of a TAXII read (already validated)."""

    added_after: datetime | None = None
    ids: frozenset[str] | None = None
    types: frozenset[str] | None = None
    versions: frozenset[str] = frozenset({"last"})
    spec_versions: frozenset[str] | None = None
    limit: int = 1000
    after: SortKey | None = None

    def version_times(self) -> set[datetime] | None:
        """The explicit versions asked for, or ``None`` when a keyword covers every version
        (each object has exactly one version here, so ``first``, ``last`` and ``all`` agree)."""
        if self.versions & VERSION_KEYWORDS:
            return None
        return {t for v in self.versions if (t := stix.parse_timestamp(v)) is not None}

    def audit_params(self) -> dict[str, Any]:
        return {
            "added_after": stix.timestamp(self.added_after) if self.added_after else None,
            "ids": sorted(self.ids) if self.ids is not None else None,
            "types": sorted(self.types) if self.types is not None else None,
            "versions": sorted(self.versions),
            "spec_versions": sorted(self.spec_versions) if self.spec_versions else None,
            "limit": self.limit,
            "after": [stix.timestamp(self.after[0]), *self.after[1:]] if self.after else None,
        }


@dataclass
class Entry:
    """One object version in a collection."""

    key: SortKey
    stix_id: str
    stix_type: str
    version: datetime
    body: dict[str, Any] | None = None
    signal: Signal | None = None
    revoked: bool = False

    @property
    def date_added(self) -> datetime:
        return self.key[0]

    def render(self, viewer_id: Any, base_url: str) -> dict[str, Any]:
        if self.body is not None:
            return self.body
        assert self.signal is not None
        if self.revoked:
            return stix.revoked_indicator(self.signal, viewer_id=viewer_id, base_url=base_url)
        return stix.indicator(self.signal, viewer_id=viewer_id, base_url=base_url)


@dataclass
class Selection:
    entries: list[Entry] = field(default_factory=list)
    more: bool = False
    last_key: SortKey | None = None

    @property
    def live_signals(self) -> list[Signal]:
        return [e.signal for e in self.entries if e.signal is not None and not e.revoked]


def _in_collection(qs: QuerySet[Any], collection: Collection) -> QuerySet[Any]:
    if collection.group_id is None:
        return qs
    return qs.filter(audience_kind="group", audience_group_id=collection.group_id)


def _live(member: Member, collection: Collection) -> QuerySet[Any]:
    """What the member may use now: the single choke point, for detection, live only."""
    return _in_collection(Signal.objects.visible_to(member, PURPOSE).live(), collection)


def _rows(member: Member, collection: Collection) -> QuerySet[Any]:
    """Every signal with a version in the collection: what the member may see now, plus what
    it was given before (whose revocation it must learn)."""
    return _in_collection(Signal.objects.visible_or_given(member, PURPOSE), collection)


def _referenced_entries(member: Member, rows: QuerySet[Any]) -> list[Entry]:
    """Beacon's static objects and the identities the collection's indicators cite."""
    entries = [
        Entry(
            key=(stix.PUBLISHED, _RANK_REFERENCED, obj.order),
            stix_id=obj.body["id"],
            stix_type=obj.body["type"],
            version=obj.version,
            body=obj.body,
        )
        for obj in stix.static_objects()
    ]
    firsts = {
        r["owner_id"]: r["first"]
        for r in rows.order_by().values("owner_id").annotate(first=Min("updated_at"))
    }
    anonymous_first: datetime | None = None
    for owner in Member.objects.filter(pk__in=list(firsts)):
        first = firsts[owner.pk]
        if owner.pk != member.pk and owner.attribution == "anonymous":
            anonymous_first = first if anonymous_first is None else min(anonymous_first, first)
            continue
        entries.append(
            Entry(
                key=(first, _RANK_REFERENCED, _MEMBER_ORDER_BASE + owner.pk),
                stix_id=stix.member_identity_id(owner.slug),
                stix_type="identity",
                version=owner.created_at,
                body=stix.member_identity(owner),
            )
        )
    if anonymous_first is not None:
        entries.append(
            Entry(
                key=(anonymous_first, _RANK_REFERENCED, _ANONYMOUS_ORDER),
                stix_id=stix.ANONYMOUS_IDENTITY_ID,
                stix_type="identity",
                version=stix.PUBLISHED,
                body=stix.anonymous_identity(),
            )
        )
    return entries


def _keeps(entry: Entry, query: ObjectQuery, times: set[datetime] | None) -> bool:
    return (
        (query.types is None or entry.stix_type in query.types)
        and (query.ids is None or entry.stix_id in query.ids)
        and (query.added_after is None or entry.date_added > query.added_after)
        and (query.after is None or entry.key > query.after)
        and (times is None or entry.version in times)
    )


def _signal_pks(rows: QuerySet[Any], wanted: set[str]) -> list[int]:
    """The signals whose indicator ids are in ``wanted``. Ids are one-way (UUIDv5), so this
    walks the member's own view, never anyone else's."""
    found: list[int] = []
    if not wanted:
        return found
    for pk in rows.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=5000):
        if stix.indicator_id(pk) in wanted:
            found.append(pk)
            if len(found) == len(wanted):
                break
    return found


def _select(member: Member, collection: Collection, query: ObjectQuery) -> Selection:
    if query.spec_versions is not None and stix.SPEC_VERSION not in query.spec_versions:
        return Selection()
    times = query.version_times()
    rows = _rows(member, collection)
    referenced = [e for e in _referenced_entries(member, rows) if _keeps(e, query, times)]
    signal_entries: list[Entry] = []
    if query.types is None or "indicator" in query.types:
        qs = rows
        if query.ids is not None:
            qs = qs.filter(
                pk__in=_signal_pks(rows, {i for i in query.ids if i.startswith("indicator--")})
            )
        if query.added_after is not None:
            qs = qs.filter(updated_at__gt=query.added_after)
        if query.after is not None:
            at, rank, n = query.after
            qs = qs.filter(
                Q(updated_at__gte=at)
                if rank < _RANK_INDICATOR
                else Q(updated_at__gt=at) | Q(updated_at=at, pk__gt=n)
            )
        if times is not None:
            qs = qs.filter(
                Q(updated_at__in=list(times))
                | Q(updated_at__in=[t - stix.REVOKED_OFFSET for t in times])
            )
        signal_entries = [
            Entry(
                key=(s.updated_at, _RANK_INDICATOR, s.pk),
                stix_id=stix.indicator_id(s.pk),
                stix_type="indicator",
                version=stix.live_version(s),
                signal=s,
            )
            for s in qs.select_related("indicator", "owner", "category").order_by(
                "updated_at", "pk"
            )[: query.limit + 1]
        ]
    candidates = sorted([*referenced, *signal_entries], key=lambda e: e.key)
    page = candidates[: query.limit]
    live_ids = set(
        _live(member, collection)
        .filter(pk__in=[e.signal.pk for e in page if e.signal is not None])
        .values_list("pk", flat=True)
    )
    kept: list[Entry] = []
    for entry in page:
        if entry.signal is not None and entry.signal.pk not in live_ids:
            entry.revoked = True
            entry.version = stix.revoked_version(entry.signal)
            if times is not None and entry.version not in times:
                continue
        elif entry.signal is not None and times is not None and entry.version not in times:
            continue
        kept.append(entry)
    return Selection(
        entries=kept,
        more=len(candidates) > query.limit,
        last_key=page[-1].key if page else None,
    )


def _exists(member: Member, collection: Collection, object_id: str) -> bool:
    probe = ObjectQuery(ids=frozenset({object_id}), versions=frozenset({"all"}), limit=1)
    return bool(_select(member, collection, probe).entries)


def _existence(member: Member, entries: Iterable[Entry]) -> tuple[dict[str, list[int]], set[str]]:
    """What a manifest or versions answer discloses: that these signals exist."""
    others = [e.signal for e in entries if e.signal is not None and e.signal.owner_id != member.pk]
    ids = sorted({s.pk for s in others})
    return ({member.slug: ids} if ids else {}), {s.owner.slug for s in others}


# -- the services ---------------------------------------------------------------------------
@dataclass
class ObjectsPage:
    """An answer of the objects, object, manifest or versions endpoints."""

    items: list[dict[str, Any]]
    date_added: list[datetime]
    more: bool
    next_key: SortKey | None


def _audit(
    *,
    actor: Actor,
    member: Member,
    collection: Collection,
    endpoint: str,
    query: ObjectQuery,
    count: int,
    disclosed: dict[str, list[int]],
    owners: set[str],
    object_id: str = "",
) -> None:
    audit.record(
        actor=actor,
        action=AuditAction.TAXII_READ,
        purpose=PURPOSE,
        target=f"taxii:collection:{collection.id}" + (f":{object_id}" if object_id else ""),
        params=query.audit_params(),
        result_count=count,
        disclosed=disclosed,
        owners=owners,
        details={"endpoint": endpoint, "collection": collection.alias},
    )


@transaction.atomic
def taxii_objects(
    *,
    member: Member,
    collection: Collection,
    query: ObjectQuery,
    actor: Actor,
    base_url: str,
    object_id: str = "",
) -> ObjectsPage:
    """Get Objects (or Get an Object with ``object_id``): the objects of one page, first
    disclosures recorded, one ``taxii.read`` event naming every signal disclosed."""
    if object_id:
        if not _exists(member, collection, object_id):
            raise NotFound()
        query = ObjectQuery(
            added_after=query.added_after,
            ids=frozenset({object_id}),
            versions=query.versions,
            spec_versions=query.spec_versions,
            limit=query.limit,
            after=query.after,
        )
    selection = _select(member, collection, query)
    items = [e.render(member.pk, base_url) for e in selection.entries]
    disclosed, owners = _disclose(member, selection.live_signals, CHANNEL)
    _audit(
        actor=actor,
        member=member,
        collection=collection,
        endpoint="object" if object_id else "objects",
        query=query,
        count=len(items),
        disclosed=disclosed,
        owners=owners,
        object_id=object_id,
    )
    return ObjectsPage(
        items=items,
        date_added=[e.date_added for e in selection.entries],
        more=selection.more,
        next_key=selection.last_key if selection.more else None,
    )


@transaction.atomic
def taxii_manifest(
    *, member: Member, collection: Collection, query: ObjectQuery, actor: Actor
) -> ObjectsPage:
    """Get Object Manifests: ids, versions and dates, no content."""
    selection = _select(member, collection, query)
    items = [
        {
            "id": e.stix_id,
            "date_added": stix.timestamp(e.date_added),
            "version": stix.timestamp(e.version),
            "media_type": stix.STIX_MEDIA_TYPE,
        }
        for e in selection.entries
    ]
    disclosed, owners = _existence(member, selection.entries)
    _audit(
        actor=actor,
        member=member,
        collection=collection,
        endpoint="manifest",
        query=query,
        count=len(items),
        disclosed=disclosed,
        owners=owners,
    )
    return ObjectsPage(
        items=items,
        date_added=[e.date_added for e in selection.entries],
        more=selection.more,
        next_key=selection.last_key if selection.more else None,
    )


@transaction.atomic
def taxii_versions(
    *,
    member: Member,
    collection: Collection,
    object_id: str,
    query: ObjectQuery,
    actor: Actor,
) -> ObjectsPage:
    """Get Object Versions. The exchange keeps a signal's current state only, so an object
    has one version: its current one (revoked once the viewer may no longer use it)."""
    if not _exists(member, collection, object_id):
        raise NotFound()
    query = ObjectQuery(
        added_after=query.added_after,
        ids=frozenset({object_id}),
        versions=frozenset({"all"}),
        spec_versions=query.spec_versions,
        limit=query.limit,
        after=query.after,
    )
    selection = _select(member, collection, query)
    disclosed, owners = _existence(member, selection.entries)
    _audit(
        actor=actor,
        member=member,
        collection=collection,
        endpoint="versions",
        query=query,
        count=len(selection.entries),
        disclosed=disclosed,
        owners=owners,
        object_id=object_id,
    )
    return ObjectsPage(
        items=[{"version": stix.timestamp(e.version)} for e in selection.entries],
        date_added=[e.date_added for e in selection.entries],
        more=selection.more,
        next_key=selection.last_key if selection.more else None,
    )


# -- the one-off export ---------------------------------------------------------------------
EXPORT_CHUNK = 1000


@transaction.atomic
def signal_export_stix(
    *, member: Member, purpose: str, actor: Actor, base_url: str
) -> Iterator[bytes]:
    """A STIX 2.1 bundle of every live signal ``member`` may see for ``purpose``, streamed.
    The disclosures and the ``signal.export`` event are written before the first byte leaves;
    the stream re-reads each chunk through ``visible_to``, so a signal retracted meanwhile is
    left out rather than sent."""
    rows = list(
        Signal.objects.visible_to(member, purpose)
        .live()
        .order_by("pk")
        .values_list("pk", "owner_id")
    )
    others = [pk for pk, owner_id in rows if owner_id != member.pk]
    if others:
        for start in range(0, len(others), 5000):
            Disclosure.objects.bulk_create(
                [
                    Disclosure(member=member, signal_id=pk, channel="export")
                    for pk in others[start : start + 5000]
                ],
                ignore_conflicts=True,
            )
    owner_ids = {owner_id for _, owner_id in rows}
    owners = list(Member.objects.filter(pk__in=owner_ids))
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_EXPORT,
        purpose=purpose,
        params={"format": "stix"},
        result_count=len(rows),
        disclosed={member.slug: others} if others else {},
        owners={o.slug for o in owners if o.pk != member.pk},
        details={"format": "stix"},
    )
    return _bundle_stream(member, purpose, [pk for pk, _ in rows], owners, base_url)


def _bundle_stream(
    member: Member, purpose: str, ids: list[int], owners: list[Member], base_url: str
) -> Iterator[bytes]:
    def dump(obj: dict[str, Any]) -> bytes:
        return jsonio.dumps(obj)

    yield b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":['
    referenced = [obj.body for obj in stix.static_objects()]
    anonymous = False
    for owner in sorted(owners, key=lambda o: o.slug):
        if owner.pk != member.pk and owner.attribution == "anonymous":
            anonymous = True
        else:
            referenced.append(stix.member_identity(owner))
    if anonymous:
        referenced.append(stix.anonymous_identity())
    yield b",".join(dump(obj) for obj in referenced)
    for start in range(0, len(ids), EXPORT_CHUNK):
        chunk = (
            Signal.objects.visible_to(member, purpose)
            .live()
            .filter(pk__in=ids[start : start + EXPORT_CHUNK])
            .select_related("indicator", "owner", "category")
            .order_by("pk")
        )
        body = b",".join(
            dump(stix.indicator(s, viewer_id=member.pk, base_url=base_url)) for s in chunk
        )
        if body:
            yield b"," + body
    yield b"]}"

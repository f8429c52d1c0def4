"""Streamed exports of the audit log (JSONL, CSV, JSON), in constant memory.

An export is the events in ``seq`` order, then the signed checkpoints that fall within them,
then a seal the exchange signs over everything exported (``client/auditchain.py``). Events are
read by keyset pages, so millions of rows never sit in memory at once.

Scopes: the whole log (auditors, the exchange itself) or one member's view: the events it
caused, in full, and the events that disclosed its signals to someone, redacted to who
received which of its signals, when and by which channel.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from client.auditchain import (
    CHAINED_FIELDS,
    CSV_COLUMNS,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    ExportDigest,
    canonical_json,
    csv_checkpoint_cells,
    csv_event_cells,
    csv_seal_cells,
    export_row,
    seal_message,
)
from exchange.audit import signing
from exchange.audit.models import AuditCheckpoint, AuditEvent, format_at

FORMATS = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
_VALUES = (*CHAINED_FIELDS, "prev_hash", "hash")


@dataclass(frozen=True)
class ExportQuery:
    """What to export. ``viewer`` is the member whose own view this is, or None for the
    whole log; ``member`` narrows the whole log to events by or about one member."""

    since: datetime | None = None
    until: datetime | None = None
    member: str | None = None
    action: str | None = None
    viewer: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None

    @property
    def scope(self) -> str:
        return f"member:{self.viewer}" if self.viewer else "all"

    def filters(self) -> dict[str, Any]:
        return {
            "since": format_at(self.since) if self.since else None,
            "until": format_at(self.until) if self.until else None,
            "member": self.member,
            "action": self.action,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }

    def queryset(self) -> QuerySet[AuditEvent]:
        events = AuditEvent.objects.all()
        if self.since is not None:
            events = events.filter(at__gte=self.since)
        if self.until is not None:
            events = events.filter(at__lt=self.until)
        if self.first_seq is not None:
            events = events.filter(seq__gte=self.first_seq)
        if self.last_seq is not None:
            events = events.filter(seq__lte=self.last_seq)
        if self.action:
            events = events.filter(action=self.action)
        for slug in (self.member, self.viewer):
            if slug:
                events = events.filter(_concerning(slug))
        return events


def _concerning(slug: str) -> Q:
    """Events a member caused, or that disclosed its signals."""
    if connection.vendor == "postgresql":
        return Q(actor_member=slug) | Q(owners__contains=[slug])
    return Q(actor_member=slug) | Q(owners__icontains=json.dumps(slug))


def iter_events(query: ExportQuery, *, chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    """The events of ``query`` in seq order, as exported rows (redacted where the viewer
    may only see its own signals' disclosures)."""
    base = query.queryset().order_by("seq")
    after = 0
    while True:
        page = list(base.filter(seq__gt=after).values(*_VALUES)[:chunk_size])
        if not page:
            return
        own = _own_signal_ids(query.viewer, page) if query.viewer else set()
        for row in page:
            row["at"] = format_at(row["at"])
            row["redacted"] = False
            if query.viewer and row["actor_member"] != query.viewer:
                row = _redact(row, query.viewer, own)
            yield export_row(row)
        after = page[-1]["seq"]


def _own_signal_ids(viewer: str, page: list[dict[str, Any]]) -> set[int]:
    from signals.models import Signal

    ids = {
        i
        for row in page
        if row["actor_member"] != viewer
        for values in (row["disclosed"] or {}).values()
        for i in values
    }
    if not ids:
        return set()
    return set(Signal.objects.filter(owner__slug=viewer, pk__in=ids).values_list("pk", flat=True))


def _redact(row: dict[str, Any], viewer: str, own: set[int]) -> dict[str, Any]:
    """Another member's event that disclosed the viewer's signals: keep who received which
    of the viewer's signals, when and how; drop everything else."""
    disclosed = {
        recipient: sorted(i for i in ids if i in own)
        for recipient, ids in (row["disclosed"] or {}).items()
    }
    disclosed = {k: v for k, v in disclosed.items() if v}
    return {
        **row,
        "actor": "",
        "request_id": "",
        "client_ip": "",
        "params_digest": "",
        "target": "",
        "details": {},
        "disclosed": disclosed,
        "owners": [viewer],
        "result_count": sum(len(v) for v in disclosed.values()),
        "redacted": True,
    }


def iter_checkpoints(first_seq: int, last_seq: int) -> Iterator[dict[str, Any]]:
    for checkpoint in AuditCheckpoint.objects.filter(
        seq__gte=first_seq, seq__lte=last_seq
    ).order_by("seq"):
        yield checkpoint.as_dict()


def make_seal(query: ExportQuery, digest: ExportDigest) -> dict[str, Any]:
    seal: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": format_at(timezone.now()),
        "scope": query.scope,
        "filters": query.filters(),
        "count": digest.count,
        "first_seq": digest.first_seq,
        "last_seq": digest.last_seq,
        "digest": digest.hexdigest(),
        "key_id": signing.key_id(),
    }
    seal["signature"] = signing.sign(seal_message(seal))
    return seal


def stream_export(
    query: ExportQuery,
    fmt: str,
    *,
    chunk_size: int = 2000,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[str]:
    """The export as text chunks; ``fmt`` is jsonl, csv or json."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    digest = ExportDigest()
    buffer: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def csv_line(cells: list[str]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(cells)
        return out.getvalue()

    if fmt == "csv":
        yield csv_line(list(CSV_COLUMNS))
    elif fmt == "json":
        yield canonical_json({"format": EXPORT_FORMAT, "version": EXPORT_VERSION})[:-1]
        yield ',"events":[\n'
    for row in iter_events(query, chunk_size=chunk_size):
        if fmt == "jsonl":
            buffer.append(canonical_json({"type": "event", **row}) + "\n")
        elif fmt == "csv":
            buffer.append(csv_line(csv_event_cells(row)))
        else:
            buffer.append(("," if digest.count else "") + canonical_json(row) + "\n")
        digest.add(row)
        if on_event is not None:
            on_event(row)
        if len(buffer) >= 500:
            yield "".join(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer)
    checkpoints = (
        iter_checkpoints(digest.first_seq, digest.last_seq)
        if digest.first_seq is not None and digest.last_seq is not None
        else iter(())
    )
    seal_row: dict[str, Any]
    if fmt == "json":
        yield '],"checkpoints":['
        yield ",".join(canonical_json(c) for c in checkpoints)
        seal_row = make_seal(query, digest)
        yield '],"seal":' + canonical_json(seal_row) + "}\n"
        return
    for checkpoint in checkpoints:
        if fmt == "jsonl":
            yield canonical_json({"type": "checkpoint", **checkpoint}) + "\n"
        else:
            yield csv_line(csv_checkpoint_cells(checkpoint))
    seal_row = make_seal(query, digest)
    if fmt == "jsonl":
        yield canonical_json({"type": "seal", **seal_row}) + "\n"
    else:
        yield csv_line(csv_seal_cells(seal_row))

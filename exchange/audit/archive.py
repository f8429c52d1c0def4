"""Retention: move events older than ``BEACON_AUDIT_RETENTION_DAYS`` to a verified archive file.

The archive is an ordinary export (JSONL with its checkpoints and seal) and carries a signed
checkpoint at its last event. Only after the file verifies are the events removed, through the
one door the append-only trigger opens (``SET LOCAL beacon.audit_archive = 'on'``, set here
and nowhere else). An ``AuditArchive`` row keeps the boundary ``(last_seq, last_hash)``, so the
chain left in the table verifies from it, and the next archive starts from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from client.auditchain import GENESIS_HASH, checkpoint_message
from client.auditverify import verify_export
from exchange.audit import signing
from exchange.audit.export import ExportQuery, stream_export
from exchange.audit.log import Actor, AuditAction, record
from exchange.audit.models import AuditArchive, AuditCheckpoint, AuditEvent, format_at


class ArchiveError(Exception):
    pass


@dataclass(frozen=True)
class ArchiveResult:
    path: Path | None
    first_seq: int | None
    last_seq: int | None
    count: int


def retention_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.BEACON_AUDIT_RETENTION_DAYS)


def archive_before(cutoff: datetime, directory: Path, *, dry_run: bool = False) -> ArchiveResult:
    """Archive and remove every event older than ``cutoff``; the file goes in ``directory``."""
    last = AuditEvent.objects.filter(at__lt=cutoff).order_by("-seq").values("seq", "hash").first()
    first = AuditEvent.objects.order_by("seq").values("seq", "prev_hash").first()
    if last is None or first is None:
        return ArchiveResult(None, None, None, 0)
    first_seq, last_seq = first["seq"], last["seq"]
    count = AuditEvent.objects.filter(seq__gte=first_seq, seq__lte=last_seq).count()
    if dry_run:
        return ArchiveResult(None, first_seq, last_seq, count)
    boundary = AuditArchive.objects.order_by("-last_seq").first()
    expected_prev = boundary.last_hash if boundary is not None else GENESIS_HASH
    if first["prev_hash"] != expected_prev:
        raise ArchiveError(f"#{first_seq} does not continue the previous archive; run audit_verify")
    _checkpoint_at(last_seq, last["hash"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"beacon-audit-{first_seq:012d}-{last_seq:012d}.jsonl"
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for chunk in stream_export(ExportQuery(first_seq=first_seq, last_seq=last_seq), "jsonl"):
            handle.write(chunk)
    key_path = path.with_name(path.name + ".pub")
    key_path.write_text(signing.public_key_pem(), "utf-8")
    result = verify_export(partial, public_key=[key_path])
    if not result.ok or result.count != count or result.last_seq != last_seq:
        raise ArchiveError(f"the archive did not verify, nothing removed: {result.summary()}")
    partial.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL beacon.audit_archive = 'on'")
            cursor.execute(
                "DELETE FROM audit_auditevent WHERE seq >= %s AND seq <= %s",
                [first_seq, last_seq],
            )
            removed = cursor.rowcount
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL beacon.audit_archive = 'off'")
        if removed != count:
            raise ArchiveError(f"expected to remove {count} events, found {removed}; rolled back")
        AuditArchive.objects.create(
            first_seq=first_seq,
            last_seq=last_seq,
            last_hash=last["hash"],
            count=count,
            file_name=path.name,
            file_sha256=digest,
            at=timezone.now(),
        )
        record(
            actor=Actor.system("audit_archive"),
            action=AuditAction.AUDIT_ARCHIVE,
            result_count=count,
            target=f"file:{path.name}",
            details={
                "first_seq": first_seq,
                "last_seq": last_seq,
                "last_hash": last["hash"],
                "file_sha256": digest,
                "cutoff": format_at(cutoff),
            },
        )
    return ArchiveResult(path, first_seq, last_seq, count)


def _checkpoint_at(seq: int, hash_: str) -> None:
    """Make sure the archive's last event is covered by a signed checkpoint."""
    if AuditCheckpoint.objects.filter(seq=seq).exists():
        return
    now = timezone.now()
    AuditCheckpoint.objects.create(
        seq=seq,
        hash=hash_,
        at=now,
        key_id=signing.key_id(),
        signature=signing.sign(checkpoint_message(seq, hash_, format_at(now))),
    )

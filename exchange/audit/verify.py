"""Verify the audit chain in the database: hashes, links, checkpoints and the chain head."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from client.auditchain import (
    CHAINED_FIELDS,
    GENESIS_HASH,
    INSERTED,
    MISSING,
    ChainWalker,
    VerifyResult,
    check_checkpoint,
)
from exchange.audit import signing
from exchange.audit.models import AuditArchive, AuditCheckpoint, AuditEvent, ChainHead, format_at

_VALUES = (*CHAINED_FIELDS, "prev_hash", "hash")


def verify_chain(since: int | datetime | None = None, *, chunk_size: int = 2000) -> VerifyResult:
    """Check every event from ``since`` (a seq or a time; default: the start of the table)
    to the head. ``result.ok`` is False at the first problem, with ``first_bad_seq`` and
    ``problem`` one of changed, missing, inserted, reordered, bad signature."""
    result = VerifyResult()
    events = AuditEvent.objects.order_by("seq")
    boundary = AuditArchive.objects.order_by("-last_seq").first()
    anchor: tuple[int, str] = (
        (boundary.last_seq, boundary.last_hash) if boundary is not None else (0, GENESIS_HASH)
    )
    if since is not None:
        start = events.filter(Q(seq__gte=since) if isinstance(since, int) else Q(at__gte=since))
        first = start.values_list("seq", flat=True).first()
        if first is None:
            result.notes.append("no events since then")
            return result
        before = events.filter(seq__lt=first).order_by("-seq").values("seq", "hash").first()
        if before is not None:
            anchor = (before["seq"], before["hash"])
        events = events.filter(seq__gte=first)
    if boundary is not None:
        result.notes.append(
            f"events up to #{boundary.last_seq} are archived ({boundary.file_name}); "
            f"the table continues from that boundary"
        )
    checkpoints = list(AuditCheckpoint.objects.filter(seq__gt=anchor[0]).order_by("seq"))
    walker = ChainWalker(
        result,
        anchor=anchor,
        known_hash=lambda h: AuditEvent.objects.filter(hash=h).exists(),
        keep={c.seq for c in checkpoints},
    )
    for row in events.values(*_VALUES).iterator(chunk_size=chunk_size):
        row["at"] = format_at(row["at"])
        if not walker.feed(row):
            break
    if result.ok:
        _check_head(result, anchor)
    if result.ok:
        keys = signing.verification_keys()
        for checkpoint in checkpoints:
            check_checkpoint(result, keys, checkpoint.as_dict(), walker.kept.get(checkpoint.seq))
            if not result.ok:
                break
    return result


def _check_head(result: VerifyResult, anchor: tuple[int, str]) -> None:
    head = ChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    last_seq = result.last_seq if result.last_seq is not None else anchor[0]
    last_hash = result.last_hash if result.last_seq is not None else anchor[1]
    if last_seq < head_seq:
        result.fail(
            MISSING,
            last_seq + 1,
            f"the chain head is #{head_seq} but the table ends at #{last_seq}",
        )
    elif last_seq > head_seq:
        result.fail(INSERTED, head_seq + 1, f"events after the chain head #{head_seq}")
    elif last_hash != head_hash:
        result.fail("changed", last_seq, f"#{last_seq} differs from the chain head")

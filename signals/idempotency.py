"""``Idempotency-Key`` handling for bulk uploads.

Same key and same body → the stored answer is replayed; same key and another body → 422; a
request with the key still in flight → 409. Keys are kept ``BEACON_IDEMPOTENCY_HOURS``. The
answer is stored as the bytes that were sent (zlib-compressed), so a replay is byte for byte the
first answer.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Member
from signals.models import IdempotencyRecord


@dataclass(frozen=True)
class Outcome:
    """An answer: its status and its rendered JSON body."""

    status: int
    body: bytes
    replayed: bool = False


class KeyConflict(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def run_once(
    *,
    member: Member,
    key: str,
    digest: str,
    work: Callable[[Callable[[int, bytes], None]], Outcome],
) -> Outcome:
    """Run ``work`` at most once per (member, key); ``digest`` is ``body_hash`` of the request
    body. ``work`` gets a ``remember`` callback to store its rendered answer inside its own
    transaction, so the answer commits with the work."""
    cutoff = timezone.now() - timedelta(hours=settings.BEACON_IDEMPOTENCY_HOURS)
    IdempotencyRecord.objects.filter(member=member, key=key, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(member=member, key=key, body_hash=digest)
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(member=member, key=key).first()
        if existing is None:
            raise KeyConflict(
                409, "A request with this Idempotency-Key is in flight; retry shortly."
            ) from None
        if not existing.completed:
            raise KeyConflict(
                409, "A request with this Idempotency-Key is still in flight; retry shortly."
            ) from None
        if existing.body_hash != digest:
            raise KeyConflict(422, "This Idempotency-Key was used with a different body.") from None
        stored = existing.response
        return Outcome(
            status=existing.response_status or 200,
            body=zlib.decompress(stored) if stored is not None else b"{}",
            replayed=True,
        )

    def remember(status: int, body: bytes) -> None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            completed=True, response_status=status, response=zlib.compress(body, 1)
        )

    try:
        return work(remember)
    except BaseException:
        # The work rolled back: free the key so the member can retry with a corrected body.
        IdempotencyRecord.objects.filter(pk=record.pk, completed=False).delete()
        raise

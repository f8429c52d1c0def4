"""The end of a signal's life: expiry (per signal, or the category default applied at upload)
and retraction by an exchange administrator.

Both give the signal a new feed ``seq`` and write an outbox row, so every member that received
it gets a ``delete`` tombstone in its feed and by webhook. Neither ever deletes a row.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from exchange import audit, sequences
from exchange.audit import Actor, AuditAction
from exchange.delivery import outbox
from exchange.delivery.models import OutboxEvent
from signals.models import Signal, SignalStatus
from signals.services import NotFound, signal_retract

EXPIRE_BATCH = 1000


def signal_expire_due(
    *, actor: Actor, now: datetime | None = None, batch_size: int = EXPIRE_BATCH
) -> int:
    """Mark every active signal whose ``expires_at`` has passed as ``expired``, in batches of
    ``batch_size`` (one transaction, one outbox row and one ``signal.expire`` audit event
    each). Safe to run in several workers at once: rows are claimed with
    ``SELECT … FOR UPDATE SKIP LOCKED``. Returns how many signals expired."""
    now = now or timezone.now()
    total = 0
    while True:
        done = _expire_batch(actor=actor, now=now, batch_size=batch_size)
        total += done
        if done < batch_size:
            return total


@transaction.atomic
def _expire_batch(*, actor: Actor, now: datetime, batch_size: int) -> int:
    rows = list(
        Signal.objects.filter(status=SignalStatus.ACTIVE, expires_at__lte=now)
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("expires_at", "pk")[:batch_size]
    )
    if not rows:
        return 0
    start = sequences.allocate(sequences.FEED, len(rows))
    stamp = timezone.now()
    for offset, signal in enumerate(rows):
        signal.status = SignalStatus.EXPIRED
        signal.seq = start + offset
        signal.updated_at = stamp
    Signal.objects.bulk_update(rows, ["status", "seq", "updated_at"], batch_size=1000)
    end = start + len(rows) - 1
    outbox.add(event=OutboxEvent.SIGNAL_EXPIRED, seq_from=start, seq_to=end)
    by_category = Counter(
        Signal.objects.filter(pk__in=[s.pk for s in rows]).values_list("category__code", flat=True)
    )
    owners = set(
        Signal.objects.filter(pk__in=[s.pk for s in rows]).values_list("owner__slug", flat=True)
    )
    audit.record(
        actor=actor,
        action=AuditAction.SIGNAL_EXPIRE,
        result_count=len(rows),
        owners=owners,
        details={
            "seq_from": start,
            "seq_to": end,
            "by_category": dict(sorted(by_category.items())),
        },
    )
    return len(rows)


@transaction.atomic
def signal_retract_as_admin(
    *, user: User, signal_id: int, reason: str, request: object = None
) -> Signal:
    """An exchange administrator retracts any member's signal with a reason (typically a
    successful user appeal). Audited with the administrator as actor; tombstones reach
    every past recipient exactly as for the owner's own retraction."""
    if not user.is_exchange_admin:
        raise PermissionDenied("Only exchange administrators may retract other members' signals.")
    signal = (
        Signal.objects.select_for_update(of=("self",))
        .select_related("owner")
        .filter(pk=signal_id)
        .first()
    )
    if signal is None:
        raise NotFound()
    return signal_retract(signal=signal, reason=reason, actor=Actor.for_user(user, request=request))

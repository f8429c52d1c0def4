"""Adding to the outbox. Services call ``add`` inside their transaction; fan-out is scheduled
for after commit (and the beat sweeper catches anything the broker missed)."""

from __future__ import annotations

from django.db import transaction

from exchange.delivery.models import OutboxEntry


def add(*, event: str, seq_from: int, seq_to: int, feedback_id: int | None = None) -> OutboxEntry:
    """Queue the signals with feed seq in ``[seq_from, seq_to]`` for fan-out."""
    entry = OutboxEntry.objects.create(
        event=event, seq_from=seq_from, seq_to=seq_to, feedback_id=feedback_id
    )
    transaction.on_commit(_schedule_fan_out)
    return entry


def _schedule_fan_out() -> None:
    from exchange.delivery import dispatch

    dispatch.schedule_fan_out()

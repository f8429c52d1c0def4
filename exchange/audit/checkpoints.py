"""Signed checkpoints of the audit chain, every N events or M minutes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from client.auditchain import checkpoint_message
from exchange.audit import signing
from exchange.audit.models import AuditCheckpoint, ChainHead, format_at


def checkpoint_due(*, force: bool = False) -> AuditCheckpoint | None:
    """Sign the chain head if enough events or time have passed since the last checkpoint
    (``BEACON_AUDIT_CHECKPOINT_EVERY`` events, ``BEACON_AUDIT_CHECKPOINT_MINUTES``);
    ``force`` signs any new head. Returns the new checkpoint, or None."""
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None or head.seq == 0:
            return None
        last = AuditCheckpoint.objects.order_by("-seq").first()
        if last is not None and last.seq >= head.seq:
            return None
        now = timezone.now()
        if not force and last is not None:
            events_since = head.seq - last.seq
            minutes = timedelta(minutes=settings.BEACON_AUDIT_CHECKPOINT_MINUTES)
            if events_since < settings.BEACON_AUDIT_CHECKPOINT_EVERY and now - last.at < minutes:
                return None
        signature = signing.sign(checkpoint_message(head.seq, head.hash, format_at(now)))
        return AuditCheckpoint.objects.create(
            seq=head.seq, hash=head.hash, at=now, key_id=signing.key_id(), signature=signature
        )

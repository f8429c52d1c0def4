"""Signal maintenance tasks. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from exchange.audit import Actor


@shared_task(name="signals.expire_due", acks_late=True, ignore_result=True)
def expire_due() -> int:
    """Beat (maintenance queue): expire signals past ``expires_at``, so their tombstones reach
    feeds and webhooks."""
    from signals.lifecycle import signal_expire_due

    return signal_expire_due(actor=Actor.system("expiry"))

"""Audit tasks: thin wrappers around the services."""

from __future__ import annotations

from celery import shared_task

from exchange.audit.checkpoints import checkpoint_due


@shared_task(name="exchange.audit.checkpoint")
def checkpoint() -> int | None:
    made = checkpoint_due()
    return made.seq if made is not None else None

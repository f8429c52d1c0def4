"""Queueing fan-out and delivery tasks. A broker outage never fails the caller: the outbox row
or delivery row is already committed, and the beat sweeper re-queues it once the broker is back.

Tasks are sent by name, so nothing here imports the task module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import DatabaseError

logger = logging.getLogger(__name__)

FAN_OUT = "exchange.delivery.fan_out"
DELIVER = "exchange.delivery.deliver"
SWEEP = "exchange.delivery.sweep"


def _send(name: str, args: Sequence[object] = (), countdown: float | None = None) -> None:
    from exchange.celery import app

    # retry=False: publishing must fail fast when the broker is down, not hold a request.
    app.send_task(name, args=list(args), countdown=countdown, retry=False, ignore_result=True)


def schedule_fan_out() -> None:
    """Ask a worker to process the outbox. Called after commit."""
    try:
        _send(FAN_OUT)
    except Exception as exc:  # noqa: BLE001 - any broker failure; the sweeper recovers
        logger.warning("fan-out not queued (the sweeper will pick it up): %s", exc)


def schedule_deliveries(ids: Sequence[int], countdown: float | None = None) -> None:
    """Queue ``deliver`` for each delivery. Those the broker refused are marked not queued,
    so the next sweep queues them without waiting for the re-queue delay."""
    failed: list[int] = []
    for index, delivery_id in enumerate(ids):
        try:
            _send(DELIVER, [delivery_id], countdown=countdown)
        except Exception as exc:  # noqa: BLE001 - any broker failure; the sweeper recovers
            logger.warning("%d deliveries not queued (the sweeper will): %s", len(ids) - index, exc)
            failed = list(ids[index:])
            break
    if failed:
        from exchange.delivery.models import Delivery

        try:
            Delivery.objects.filter(pk__in=failed).update(enqueued_at=None)
        except DatabaseError as exc:
            logger.warning("could not mark deliveries as not queued: %s", exc)

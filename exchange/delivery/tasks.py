"""Celery tasks for fan-out: thin, idempotent, taking ids. Routed to the ``fanout``,
``delivery`` and ``maintenance`` queues by ``CELERY_TASK_ROUTES``; ``acks_late`` with prefetch 1
(settings), so a killed worker's task is re-delivered, and the sweeper covers lost messages."""

from __future__ import annotations

from celery import shared_task

from exchange import metrics
from exchange.delivery import dispatch, services


@shared_task(name=dispatch.FAN_OUT, acks_late=True, ignore_result=True)
def fan_out() -> int:
    """Turn pending outbox rows into deliveries; re-queue itself if rows are left."""
    result = services.fan_out_pending(budget_seconds=30.0)
    if result.more:
        dispatch.schedule_fan_out()
    return result.processed


@shared_task(name=dispatch.DELIVER, acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> str:
    """One attempt at one delivery."""
    status = str(services.delivery_attempt(delivery_id=delivery_id).status)
    metrics.count_outcome("delivery_attempts", status)
    return status


@shared_task(name=dispatch.SWEEP, acks_late=True, ignore_result=True)
def sweep() -> int:
    """Re-queue outbox rows and due deliveries that the broker lost."""
    return services.sweep().deliveries_requeued

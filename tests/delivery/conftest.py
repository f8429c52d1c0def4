"""Fixtures for fan-out tests: a real local receiver and helpers that run the pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Member
from exchange.delivery import sender, services
from exchange.delivery.models import Delivery, DeliveryStatus
from tests.conftest import SYSTEM
from tests.delivery.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    sender.reset_pool()
    yield r
    r.stop()
    sender.reset_pool()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def submit(member: Member, *values: str, audience: str = "all", **extra: Any) -> list[int]:
    from signals.services import signal_submit

    items = [
        {
            "type": "sha256",
            "value": digest(v),
            "category": extra.get("category", "csea.sextortion"),
            "audience": audience,
        }
        for v in values
    ]
    result = signal_submit(member=member, items=items, actor=SYSTEM)
    return [s["id"] for s in result.signals]


def subscribe(member: Member, url: str, **filters: Any) -> services.CreatedSubscription:
    return services.subscription_create(member=member, url=url, actor=SYSTEM, **filters)


def run_pipeline(max_rounds: int = 20) -> None:
    """Fan out every outbox row and attempt every due delivery, as workers would."""
    for _ in range(max_rounds):
        services.fan_out_pending(budget_seconds=30)
        due = list(Delivery.objects.due().values_list("pk", flat=True))
        if not due:
            return
        for delivery_id in due:
            services.delivery_attempt(delivery_id=delivery_id)


def make_due() -> None:
    """Skip the waiting time of every pending delivery."""
    from django.utils import timezone

    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now())

"""A real signed delivery from the exchange, received and verified by the client's receiver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Member
from client.normalize import sha256_hex
from client.sdk import BeaconClient
from client.webhooks import WebhookReceiver, WebhookVerificationError, verify_webhook

pytestmark = pytest.mark.django_db(transaction=True)


def deliver_pending() -> None:
    """Fan out and attempt every due delivery, as the Celery workers would."""
    from exchange.delivery import services
    from exchange.delivery.models import Delivery

    for _ in range(10):
        services.fan_out_pending(budget_seconds=30)
        due = list(Delivery.objects.due().values_list("pk", flat=True))
        if not due:
            return
        for delivery_id in due:
            services.delivery_attempt(delivery_id=delivery_id)


def test_a_real_signed_delivery_verifies_with_the_subscription_secret(
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Callable[..., BeaconClient],
) -> None:
    subscriber = beacon_for(member_b)
    with WebhookReceiver(secrets=[]) as receiver:
        created = subscriber.create_subscription(url=receiver.url, types=["sha256"])
        receiver.secrets.append(created["secret"])
        assert created["secret"].startswith("whsec_")

        ping = subscriber.test_subscription(created["id"])
        assert ping and receiver.deliveries and receiver.deliveries[0].verified

        uploaded = beacon_for(member_a).upload(
            [
                {"type": "sha256", "value": sha256_hex(f"file-{i}"), "category": "csea.csam",
                 "audience": "group:pilot"}
                for i in range(3)
            ]
        )  # fmt: skip
        deliver_pending()

    batches = [d for d in receiver.deliveries if d.events]
    assert batches and all(d.verified for d in batches)
    assert {e["signal"]["id"] for e in receiver.verified_events()} >= {
        s["id"] for s in uploaded.signals
    }
    # The same request fails verification with any other secret or a changed body.
    delivery = batches[0]
    assert verify_webhook(created["secret"], delivery.headers, delivery.body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(created["secret"], delivery.headers, delivery.body.replace("csea", "xxxx"))

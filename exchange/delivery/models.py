"""Fan-out rows: the transactional outbox, webhook subscriptions, payloads and deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from accounts.models import Member


class OutboxEvent(models.TextChoices):
    SIGNAL_UPSERTED = "signal.upserted"
    SIGNAL_RETRACTED = "signal.retracted"
    # Signals past ``expires_at``: tombstones for their recipients, like a retraction.
    SIGNAL_EXPIRED = "signal.expired"
    # One feedback row (``feedback_id``), told to the signal's owner only.
    FEEDBACK_CREATED = "feedback.created"
    # A signal disputed by enough members (``feedback_id`` is the reaction that tipped it),
    # told to its owner only.
    SIGNAL_FLAGGED = "signal.flagged"


class OutboxEntry(models.Model):
    """A batch of changes waiting to be fanned out: the signals whose feed ``seq`` lies in
    ``[seq_from, seq_to]`` (or one feedback row). Written in the
    same transaction as the change, so a committed change is never lost even if the broker is
    down; ``processed_at`` is set, in the transaction that creates its deliveries, once
    deliveries exist for it. One row per batch keeps bulk uploads cheap. ``member_id`` limits
    the fan-out to one member (a follow-up for a member whose view of a signal changed while a
    delivery to it was in flight)."""

    event = models.CharField(max_length=32, choices=OutboxEvent.choices)
    seq_from = models.BigIntegerField()
    seq_to = models.BigIntegerField()
    feedback_id = models.BigIntegerField(null=True, blank=True)
    member_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "outbox entries"

    def __str__(self) -> str:
        return f"{self.event} seq {self.seq_from}–{self.seq_to}"


class WebhookEvent(models.TextChoices):
    """What a subscription can ask for. ``signal.retracted`` covers every tombstone:
    retraction, expiry and loss of visibility. ``feedback.created`` and ``signal.flagged``
    reach the signal's owner only."""

    SIGNAL_UPSERTED = "signal.upserted"
    SIGNAL_RETRACTED = "signal.retracted"
    FEEDBACK_CREATED = "feedback.created"
    SIGNAL_FLAGGED = "signal.flagged"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active"
    # Still delivered to, but a delivery exhausted its whole retry schedule.
    FAILING = "failing"
    # The receiver answered 410 Gone (or an administrator disabled it): nothing is sent.
    DISABLED = "disabled"
    DELETED = "deleted"


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def receiving(self) -> SubscriptionQuerySet:
        return self.filter(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.FAILING])

    def visible(self) -> SubscriptionQuerySet:
        return self.exclude(status=SubscriptionStatus.DELETED)


class Subscription(models.Model):
    """A member's webhook endpoint with its filters. The signing secret is stored encrypted
    (``exchange.delivery.signing``): the exchange must sign with it, so a hash would not do.
    During a rotation the previous secret signs too, until ``previous_secret_expires_at``."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="subscriptions")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    # Empty lists mean "everything".
    types = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    events = models.JSONField(default=list, blank=True)
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    status_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["member", "status"])]

    def __str__(self) -> str:
        return f"subscription {self.pk} ({self.member_id})"

    def wants_event(self, event: str) -> bool:
        return not self.events or event in self.events

    def wants(self, *, type_name: str, category_code: str) -> bool:
        return (not self.types or type_name in self.types) and (
            not self.categories or category_code in self.categories
        )


class Payload(models.Model):
    """The exact body of a webhook, shared by every delivery that carries the same events.
    The body never changes once written, so a retried ``webhook-id`` always carries the same
    bytes. ``upserts`` lists ``[signal_id, seq]`` of the signals the body discloses."""

    body = models.BinaryField()  # zlib-compressed UTF-8 JSON
    event_count = models.PositiveIntegerField(default=0)
    upserts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"payload {self.pk} ({self.event_count} events)"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    # The whole retry schedule failed: kept, visible and redeliverable.
    DEAD = "dead"
    # Never sent: the member may no longer receive it, the subscription was disabled or
    # deleted, or its events were re-packed into a newer delivery (``superseded_by``).
    CANCELLED = "cancelled"


class DeliveryKind(models.TextChoices):
    BATCH = "batch"
    PING = "ping"


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def due(self, at: Any = None) -> DeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=at or timezone.now())


class Delivery(models.Model):
    """One webhook POST of up to 1,000 events to one subscription, with its attempts. The
    ``webhook_id`` is stable across retries and redeliveries. ``lease_until`` marks an attempt
    in flight, so two workers never send the same delivery at once; ``enqueued_at`` says when a
    ``deliver`` task was last queued for it, so the sweeper can re-queue lost ones."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="deliveries")
    payload = models.ForeignKey(Payload, on_delete=models.PROTECT, related_name="deliveries")
    outbox_entry = models.ForeignKey(
        OutboxEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    kind = models.CharField(max_length=8, choices=DeliveryKind.choices, default=DeliveryKind.BATCH)
    webhook_id = models.CharField(max_length=40, unique=True, default=new_webhook_id)
    event_count = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    redeliveries = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["subscription", "id"]),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status}, {self.event_count} events)"

"""Indicators, signals, the category taxonomy, feedback, disclosures and idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone

from accounts.models import Member, SharingGroup
from signals.querysets import SignalQuerySet


class SignalStatus(models.TextChoices):
    ACTIVE = "active"
    RETRACTED = "retracted"
    EXPIRED = "expired"


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Tlp(models.TextChoices):
    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"


class AudienceKind(models.TextChoices):
    ALL = "all"
    GROUP = "group"
    MEMBERS = "members"


class Reaction(models.TextChoices):
    SEEN = "seen"
    ACTIONED = "actioned"
    NOT_ACTIONED = "not_actioned"
    FALSE_POSITIVE = "false_positive"
    DISPUTED = "disputed"
    HELPFUL = "helpful"


class ActionTaken(models.TextChoices):
    """What a member did after reviewing a signal, reported with an ``actioned`` reaction.
    The vocabulary is published in docs/feedback.md; the transparency report counts by it."""

    ACCOUNT_SUSPENDED = "account_suspended", "Account suspended (temporarily)"
    ACCOUNT_TERMINATED = "account_terminated", "Account terminated"
    ACCOUNT_RESTRICTED = "account_restricted", "Account features restricted"
    CONTENT_REMOVED = "content_removed", "Content removed"
    UPLOAD_BLOCKED = "upload_blocked", "Upload or sharing blocked"
    PAYMENT_BLOCKED = "payment_blocked", "Payment or payout blocked"
    USER_WARNED = "user_warned", "User warned"
    REPORTED_TO_HOTLINE = "reported_to_hotline", "Reported to a hotline (e.g. NCMEC, INHOPE member)"
    REFERRED_TO_LAW_ENFORCEMENT = (
        "referred_to_law_enforcement",
        "Referred to law enforcement under the member's own legal duty",
    )
    VICTIM_SUPPORTED = "victim_supported", "Victim offered support or safety resources"
    OTHER = "other", "Other action"


class Category(models.Model):
    """A code of the taxonomy (``csea.grooming``…). Seeded by a data migration, edited in the
    admin. A member receives a category only if it holds every attestation listed here."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    references = models.JSONField(default=list, blank=True)
    required_attestations = models.JSONField(default=list, blank=True)
    default_ttl_days = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.code


class Indicator(models.Model):
    """One (type, stored value). Identifier types store a peppered HMAC and its key version."""

    type = models.CharField(max_length=32)
    value = models.CharField(max_length=2048)
    key_version = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["type", "value"], name="indicator_unique_type_value")
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.value[:16]}…"


class IndicatorFrames(models.Model):
    """The frames of a video-hash indicator (``vpdq``), one per line in the ``vpdq`` library's
    text format; the indicator's ``value`` is the SHA-256 of this text."""

    indicator = models.OneToOneField(
        Indicator, on_delete=models.CASCADE, primary_key=True, related_name="frames"
    )
    text = models.TextField()

    def __str__(self) -> str:
        return f"frames of indicator {self.indicator_id}"


class Signal(models.Model):
    """One member's assertion about one indicator. Unique per (indicator, owner): uploading
    again updates it. ``seq`` is the feed sequence of its latest change."""

    # No single-column indexes on indicator and owner: the unique (indicator, owner) and the
    # (owner, seq) index lead with them, and each extra index is paid on every bulk write.
    indicator = models.ForeignKey(
        Indicator, on_delete=models.PROTECT, related_name="signals", db_index=False
    )
    owner = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="signals", db_index=False
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="signals")
    tags = models.JSONField(default=list, blank=True)
    confidence = models.PositiveSmallIntegerField(default=50)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    audience = models.CharField(max_length=1024, default="all")
    audience_kind = models.CharField(
        max_length=16, choices=AudienceKind.choices, default=AudienceKind.ALL
    )
    audience_group = models.ForeignKey(
        SharingGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="signals"
    )
    # ",slug1,slug2," for named-member audiences, so membership is a portable substring test.
    audience_members = models.CharField(max_length=1024, blank=True, default="")
    tlp = models.CharField(max_length=16, choices=Tlp.choices, default=Tlp.AMBER)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    status = models.CharField(
        max_length=16, choices=SignalStatus.choices, default=SignalStatus.ACTIVE
    )
    external_id = models.CharField(max_length=200, blank=True, default="")
    bundle_id = models.UUIDField(null=True, blank=True, db_index=True)
    quality = models.PositiveSmallIntegerField(null=True, blank=True)
    lang = models.CharField(max_length=35, blank=True, default="")
    seq = models.BigIntegerField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    retracted_at = models.DateTimeField(null=True, blank=True)
    retract_reason = models.CharField(max_length=500, blank=True, default="")
    flagged_at = models.DateTimeField(null=True, blank=True)

    objects = SignalQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["indicator", "owner"], name="signal_unique_indicator_owner"
            )
        ]
        indexes = [models.Index(fields=["owner", "seq"]), models.Index(fields=["status", "seq"])]

    def __str__(self) -> str:
        return f"signal {self.pk} ({self.owner_id}, {self.category_id})"

    def is_expired(self, at: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or timezone.now())

    def is_live(self, at: datetime | None = None) -> bool:
        return self.status == SignalStatus.ACTIVE and not self.is_expired(at)


class Feedback(models.Model):
    """A member's reaction to a signal it can see. One current row per (signal, member,
    reaction); reacting again updates the note and the action taken."""

    signal = models.ForeignKey(Signal, on_delete=models.CASCADE, related_name="feedback")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="feedback")
    reaction = models.CharField(max_length=32, choices=Reaction.choices)
    note = models.CharField(max_length=1000, blank=True, default="")
    action_taken = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["signal", "member", "reaction"], name="feedback_one_per_reaction"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.reaction} signal {self.signal_id}"


class Disclosure(models.Model):
    """The first time a signal reached a member (by match, feed, get, webhook or TAXII). Lets
    tombstones reach exactly the members that received a signal, and no one else.

    Written by the thousand per feed page, from ids just read in the same transaction, so the
    database checks no foreign keys here, and its key is the pair itself: no surrogate id and
    no index of its own on ``member`` (the key leads with it); decision 0005."""

    pk = models.CompositePrimaryKey("member", "signal")
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="disclosures",
        db_constraint=False,
        db_index=False,
    )
    signal = models.ForeignKey(
        Signal, on_delete=models.CASCADE, related_name="disclosures", db_constraint=False
    )
    channel = models.CharField(max_length=16)
    first_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"signal {self.signal_id} → {self.member_id}"


class IdempotencyRecord(models.Model):
    """An ``Idempotency-Key`` a member used, with the SHA-256 of the body it came with and the
    answer as it was sent (the rendered JSON, zlib-compressed), so a replay is the same bytes."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    body_hash = models.CharField(max_length=64)
    completed = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "key"], name="idempotency_unique_member_key")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.key}"


def new_bundle_id() -> uuid.UUID:
    return uuid.uuid4()


def audience_fields(kind: str, group: SharingGroup | None, members: list[str]) -> dict[str, Any]:
    """The denormalised audience columns for a parsed audience."""
    if kind == AudienceKind.GROUP and group is not None:
        return {
            "audience": f"group:{group.slug}",
            "audience_kind": kind,
            "audience_group": group,
            "audience_members": "",
        }
    if kind == AudienceKind.MEMBERS:
        slugs = sorted(set(members))
        return {
            "audience": "members:" + ",".join(slugs),
            "audience_kind": kind,
            "audience_group": None,
            "audience_members": "," + ",".join(slugs) + ",",
        }
    return {
        "audience": "all",
        "audience_kind": AudienceKind.ALL,
        "audience_group": None,
        "audience_members": "",
    }

"""Members, users, API tokens and sharing groups."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib
from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "bcn_"
_ALPHABET = string.ascii_letters + string.digits


class MemberKind(models.TextChoices):
    PLATFORM = "platform"
    FINANCIAL = "financial"
    NGO = "ngo"
    EXCHANGE = "exchange"
    GOVERNMENT = "government"


class MemberStatus(models.TextChoices):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEFT = "left"


class Attestation(models.TextChoices):
    AGREEMENT = "agreement", "Signed the participation agreement"
    HUMAN_REVIEW = "human_review", "Human review before action"
    USER_APPEALS = "user_appeals", "User appeals process"
    NO_GOVERNMENT_DISCLOSURE = "no_government_disclosure", "No disclosure to governments"


class Attribution(models.TextChoices):
    NAMED = "named"
    ANONYMOUS = "anonymous"


class Scope(models.TextChoices):
    SIGNALS_WRITE = "signals:write"
    SIGNALS_READ = "signals:read"
    FEEDBACK_WRITE = "feedback:write"
    SUBSCRIPTIONS_MANAGE = "subscriptions:manage"
    AUDIT_READ = "audit:read"


class Purpose(models.TextChoices):
    DETECTION = "detection"
    INVESTIGATION = "investigation"
    RESEARCH = "research"


class MemberQuerySet(models.QuerySet["Member"]):
    def active(self) -> MemberQuerySet:
        return self.filter(status=MemberStatus.ACTIVE)


class Member(models.Model):
    """An organisation in the exchange. Only ``active`` members with a signed agreement may
    read or share; the policy module decides everything else from these fields."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=MemberKind.choices, default=MemberKind.PLATFORM)
    status = models.CharField(
        max_length=16, choices=MemberStatus.choices, default=MemberStatus.PENDING
    )
    attribution = models.CharField(
        max_length=16, choices=Attribution.choices, default=Attribution.NAMED
    )
    # Category codes this member may receive; empty means every category.
    receive_categories = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)

    objects = MemberQuerySet.as_manager()

    # A member is the API principal (``request.user``) once its token has authenticated.
    is_authenticated = True
    is_anonymous = False

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == MemberStatus.ACTIVE

    def attestation_kinds(self) -> frozenset[str]:
        cached = getattr(self, "_attestation_cache", None)
        if cached is None:
            cached = frozenset(self.attestations.values_list("kind", flat=True))
            self._attestation_cache = cached
        return cached

    def has_signed_agreement(self) -> bool:
        return Attestation.AGREEMENT in self.attestation_kinds()


class MemberAttestation(models.Model):
    """One attestation a member made, with who recorded it and when."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="attestations")
    kind = models.CharField(max_length=32, choices=Attestation.choices)
    attested_by = models.CharField(max_length=200)
    attested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "kind"], name="one_attestation_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.member.slug}:{self.kind}"


class Role(models.TextChoices):
    MEMBER_ADMIN = "member_admin"
    MEMBER_ANALYST = "member_analyst"
    EXCHANGE_ADMIN = "exchange_admin"
    AUDITOR = "auditor"


class User(AbstractUser):
    """A person. Member users work for a member; staff (exchange admins, auditors) may have none."""

    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.MEMBER_ANALYST)

    @property
    def is_exchange_admin(self) -> bool:
        return self.is_superuser or self.role == Role.EXCHANGE_ADMIN

    @property
    def is_auditor(self) -> bool:
        return self.role == Role.AUDITOR


class SharingGroup(models.Model):
    """A named set of members that signals can be shared with (``audience: group:<slug>``)."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(Member, related_name="sharing_groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    out = []
    for _ in range(6):
        value, rem = divmod(value, 62)
        out.append(_ALPHABET[rem])
    return "".join(out)


def generate_token() -> tuple[str, str]:
    """A new ``bcn_`` token and its visible prefix. The checksum lets us reject typos
    without a database lookup."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    token = f"{TOKEN_PREFIX}{body}{_checksum(body)}"
    return token, token[: len(TOKEN_PREFIX) + 8]


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def well_formed_token(raw: str) -> bool:
    if not raw.startswith(TOKEN_PREFIX) or len(raw) != len(TOKEN_PREFIX) + 46:
        return False
    body, check = raw[len(TOKEN_PREFIX) : -6], raw[-6:]
    return all(c in _ALPHABET for c in body) and hmac.compare_digest(_checksum(body), check)


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A member's API credential. Only the SHA-256 of the token is stored, next to a short
    visible prefix used to find it and to name it in logs."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    purposes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.member.slug})"

    def matches(self, raw: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_token(raw))

    def is_expired(self, at: datetime | None = None) -> bool:
        return self.expires_at <= (at or timezone.now())

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def allows_purpose(self, purpose: str) -> bool:
        return purpose in self.purposes

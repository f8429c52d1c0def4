"""Member, token and group workflows. Each one validates, writes and audits in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    ApiToken,
    Attestation,
    Member,
    MemberAttestation,
    MemberStatus,
    Purpose,
    Scope,
    SharingGroup,
    User,
    generate_token,
    hash_token,
)
from exchange import audit
from exchange.audit import Actor, AuditAction


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    plaintext: str


@transaction.atomic
def member_create(
    *,
    slug: str,
    name: str,
    kind: str,
    actor: Actor,
    attestations: Iterable[str] = (),
    activate: bool = False,
    attribution: str = "named",
) -> Member:
    if Member.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A member with slug {slug!r} already exists."})
    member = Member(slug=slug, name=name, kind=kind, attribution=attribution)
    member.full_clean()
    member.save()
    audit.record(
        actor=actor,
        action=AuditAction.MEMBER_CREATE,
        target=f"member:{slug}",
        details={"kind": kind},
    )
    for kind_ in attestations:
        member_attest(member=member, attestation=kind_, actor=actor)
    if activate:
        member_activate(member=member, actor=actor)
    return member


@transaction.atomic
def member_attest(*, member: Member, attestation: str, actor: Actor) -> MemberAttestation:
    if attestation not in Attestation.values:
        raise ValidationError({"attestation": f"Unknown attestation {attestation!r}."})
    row, _ = MemberAttestation.objects.get_or_create(
        member=member, kind=attestation, defaults={"attested_by": actor.label}
    )
    member.__dict__.pop("_attestation_cache", None)
    audit.record(
        actor=actor,
        action=AuditAction.MEMBER_ATTEST,
        target=f"member:{member.slug}",
        details={"attestation": attestation},
    )
    return row


@transaction.atomic
def member_set_categories(*, member: Member, categories: Iterable[str], actor: Actor) -> Member:
    """Change the categories a member may receive (empty: all). Signals of categories it loses
    are re-announced so it receives tombstones for them."""
    from signals.models import Category, Signal
    from signals.services import signal_reannounce

    codes = sorted(set(categories))
    known = set(Category.objects.filter(code__in=codes).values_list("code", flat=True))
    if set(codes) - known:
        raise ValidationError(
            {"receive_categories": f"Unknown categories: {', '.join(sorted(set(codes) - known))}"}
        )
    before = set(member.receive_categories or [])
    member.receive_categories = codes
    member.save(update_fields=["receive_categories"])
    if codes and (not before or not set(codes) >= before):
        signal_reannounce(queryset=Signal.objects.exclude(category__code__in=codes))
    audit.record(
        actor=actor,
        action=AuditAction.MEMBER_UPDATE,
        target=f"member:{member.slug}",
        details={"receive_categories": codes},
    )
    return member


def _set_status(
    *, member: Member, status: str, actor: Actor, action: AuditAction, reason: str = ""
) -> Member:
    Member.objects.filter(pk=member.pk).update(status=status, status_changed_at=timezone.now())
    member.status = status
    audit.record(
        actor=actor,
        action=action,
        target=f"member:{member.slug}",
        details={"status": status, "reason": reason},
    )
    return member


@transaction.atomic
def member_activate(*, member: Member, actor: Actor) -> Member:
    if not member.has_signed_agreement():
        raise ValidationError(
            {"status": "A member must sign the agreement before it is activated."}
        )
    return _set_status(
        member=member, status=MemberStatus.ACTIVE, actor=actor, action=AuditAction.MEMBER_ACTIVATE
    )


@transaction.atomic
def member_suspend(*, member: Member, actor: Actor, reason: str = "") -> Member:
    """Suspension takes effect on the member's next request: authentication checks status."""
    return _set_status(
        member=member,
        status=MemberStatus.SUSPENDED,
        actor=actor,
        action=AuditAction.MEMBER_SUSPEND,
        reason=reason,
    )


def _validate_token_request(
    scopes: Iterable[str], purposes: Iterable[str]
) -> tuple[list[str], list[str]]:
    scopes, purposes = sorted(set(scopes)), sorted(set(purposes))
    errors = {}
    bad_scopes = [s for s in scopes if s not in Scope.values]
    bad_purposes = [p for p in purposes if p not in Purpose.values]
    if bad_scopes or not scopes:
        errors["scopes"] = (
            f"Choose scopes from {', '.join(Scope.values)}; got {bad_scopes or 'none'}."
        )
    if bad_purposes:
        errors["purposes"] = (
            f"Choose purposes from {', '.join(Purpose.values)}; got {bad_purposes}."
        )
    if errors:
        raise ValidationError(errors)
    return scopes, purposes


@transaction.atomic
def token_issue(
    *,
    member: Member,
    scopes: Iterable[str],
    purposes: Iterable[str] = (Purpose.DETECTION, Purpose.INVESTIGATION),
    actor: Actor,
    name: str = "",
    expires_at: datetime | None = None,
    expires_days: int | None = None,
) -> IssuedToken:
    """Issue a token. The plaintext is returned once and never stored."""
    scope_list, purpose_list = _validate_token_request(scopes, purposes)
    if expires_at is None:
        expires_at = timezone.now() + timedelta(
            days=expires_days or settings.BEACON_TOKEN_DEFAULT_DAYS
        )
    plaintext, prefix = generate_token()
    token = ApiToken.objects.create(
        member=member,
        name=name,
        prefix=prefix,
        secret_hash=hash_token(plaintext),
        scopes=scope_list,
        purposes=purpose_list,
        expires_at=expires_at,
        created_by=actor.label,
    )
    audit.record(
        actor=actor,
        action=AuditAction.TOKEN_ISSUE,
        target=f"token:{prefix}",
        details={"member": member.slug, "scopes": scope_list, "purposes": purpose_list},
    )
    return IssuedToken(token=token, plaintext=plaintext)


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    audit.record(
        actor=actor,
        action=AuditAction.TOKEN_REVOKE,
        target=f"token:{token.prefix}",
        details={"member": token.member.slug},
    )
    return token


@transaction.atomic
def group_create(
    *, slug: str, name: str, actor: Actor, members: Iterable[Member] = ()
) -> SharingGroup:
    if SharingGroup.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A group with slug {slug!r} already exists."})
    group = SharingGroup.objects.create(slug=slug, name=name)
    audit.record(actor=actor, action=AuditAction.GROUP_CREATE, target=f"group:{slug}")
    for member in members:
        group_add_member(group=group, member=member, actor=actor)
    return group


@transaction.atomic
def group_add_member(*, group: SharingGroup, member: Member, actor: Actor) -> SharingGroup:
    group.members.add(member)
    audit.record(
        actor=actor,
        action=AuditAction.GROUP_ADD_MEMBER,
        target=f"group:{group.slug}",
        details={"member": member.slug},
    )
    return group


@transaction.atomic
def group_remove_member(*, group: SharingGroup, member: Member, actor: Actor) -> SharingGroup:
    """Remove a member from a group. The group's signals are re-announced so the member's
    feed and webhooks receive tombstones for what it may no longer see."""
    from signals.services import signal_reannounce

    group.members.remove(member)
    signal_reannounce(queryset=group.signals.all())
    audit.record(
        actor=actor,
        action=AuditAction.GROUP_REMOVE_MEMBER,
        target=f"group:{group.slug}",
        details={"member": member.slug},
    )
    return group


@transaction.atomic
def member_update(*, member: Member, changes: dict[str, str], actor: Actor) -> Member:
    """Change a member's name, kind or attribution (an administrator's correction)."""
    allowed = {"name", "kind", "attribution"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({f: "This field cannot be changed here." for f in sorted(unknown)})
    for field_name, value in changes.items():
        setattr(member, field_name, value)
    member.full_clean()
    if changes:
        member.save(update_fields=sorted(changes))
    audit.record(
        actor=actor,
        action=AuditAction.MEMBER_UPDATE,
        target=f"member:{member.slug}",
        details={"fields": sorted(changes)},
    )
    return member


@transaction.atomic
def user_save(*, user: User, created: bool, fields: Iterable[str], actor: Actor) -> User:
    """Save a staff or member user edited by an administrator. The audit event names the
    fields that changed, never their values (a password change shows as ``password``)."""
    user.save()
    audit.record(
        actor=actor,
        action=AuditAction.ADMIN_ACTION,
        target=f"user:{user.get_username()}",
        details={
            "operation": "user.create" if created else "user.update",
            "fields": sorted(set(fields)),
            "role": user.role,
            "member": user.member.slug if user.member is not None else "",
        },
    )
    return user


@transaction.atomic
def group_update(*, group: SharingGroup, name: str, description: str, actor: Actor) -> SharingGroup:
    group.name = name
    group.description = description
    group.save(update_fields=["name", "description"])
    audit.record(
        actor=actor,
        action=AuditAction.ADMIN_ACTION,
        target=f"group:{group.slug}",
        details={"operation": "group.update"},
    )
    return group


@transaction.atomic
def user_reset_second_factor(*, user: User, actor: Actor) -> int:
    """Remove a staff user's TOTP devices (a lost phone): the user must enrol again at their
    next sign-in. Returns how many devices were removed."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    audit.record(
        actor=actor,
        action=AuditAction.ADMIN_ACTION,
        target=f"user:{user.get_username()}",
        details={"operation": "otp.reset", "devices": removed},
    )
    return removed


@transaction.atomic
def login_unlock(*, username: str, actor: Actor) -> int:
    """Clear a username's admin sign-in lockout (django-axes) before it cools off. Returns how
    many recorded attempts were removed."""
    from axes.utils import reset

    removed = reset(username=username)
    audit.record(
        actor=actor,
        action=AuditAction.ADMIN_ACTION,
        target=f"user:{username}",
        details={"operation": "login.unlock", "attempts": removed},
    )
    return removed

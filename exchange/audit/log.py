"""Writing audit events.

``record()`` must be called inside the transaction of the work it records: if the work rolls
back, so does its audit event, and an event never exists for work that did not happen.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from client.auditchain import event_hash, params_digest
from exchange.audit.models import AuditEvent, ChainHead, format_at

if TYPE_CHECKING:
    from accounts.models import ApiToken, Member, User


class AuditAction(StrEnum):
    """Stable action codes. Documented in docs/audit-log.md; never renamed."""

    API_REQUEST = "api.request"
    API_REFUSED = "api.refused"
    MEMBER_READ = "member.read"
    MEMBER_CREATE = "member.create"
    MEMBER_ACTIVATE = "member.activate"
    MEMBER_SUSPEND = "member.suspend"
    MEMBER_UPDATE = "member.update"
    MEMBER_ATTEST = "member.attest"
    TOKEN_ISSUE = "token.issue"
    TOKEN_REVOKE = "token.revoke"
    GROUP_CREATE = "group.create"
    GROUP_ADD_MEMBER = "group.add_member"
    GROUP_REMOVE_MEMBER = "group.remove_member"
    CATEGORY_CHANGE = "category.change"
    SIGNAL_SUBMIT = "signal.submit"
    SIGNAL_IMPORT = "signal.import"
    SIGNAL_LIST = "signal.list"
    SIGNAL_GET = "signal.get"
    SIGNAL_UPDATE = "signal.update"
    SIGNAL_RETRACT = "signal.retract"
    SIGNAL_EXPIRE = "signal.expire"
    SIGNAL_EXPORT = "signal.export"
    SIGNAL_MATCH = "signal.match"
    SIGNAL_MATCH_TEXT = "signal.match_text"
    SIGNAL_FEED = "signal.feed"
    SIGNAL_FLAG = "signal.flag"
    FEEDBACK_CREATE = "feedback.create"
    SUBSCRIPTION_CREATE = "subscription.create"
    SUBSCRIPTION_READ = "subscription.read"
    SUBSCRIPTION_DELETE = "subscription.delete"
    SUBSCRIPTION_ROTATE = "subscription.rotate_secret"
    SUBSCRIPTION_TEST = "subscription.test"
    SUBSCRIPTION_PAUSE = "subscription.pause"
    SUBSCRIPTION_RESUME = "subscription.resume"
    DELIVERY_SENT = "delivery.sent"
    DELIVERY_FAILED = "delivery.failed"
    DELIVERY_REDELIVER = "delivery.redeliver"
    AUDIT_EXPORT = "audit.export"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    AUDIT_CHECKPOINT = "audit.checkpoint"
    AUDIT_ARCHIVE = "audit.archive"
    REPORT_READ = "report.read"
    TAXII_READ = "taxii.read"
    ADMIN_ACTION = "admin.action"


@dataclass(frozen=True)
class Actor:
    """Who did something: a member's token, a staff user, or the system itself."""

    label: str
    member: Member | None = None
    user: User | None = None
    token: ApiToken | None = None
    request_id: str = ""
    client_ip: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def member_slug(self) -> str:
        return self.member.slug if self.member is not None else ""

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(label=f"system:{name}")

    @classmethod
    def for_user(cls, user: User, *, request: Any = None) -> Actor:
        return cls(
            label=f"user:{user.get_username()}",
            member=getattr(user, "member", None),
            user=user,
            request_id=getattr(request, "request_id", "") if request is not None else "",
            client_ip=client_ip(request) if request is not None else "",
        )

    @classmethod
    def for_token(cls, token: ApiToken, *, request: Any = None) -> Actor:
        return cls(
            label=f"token:{token.prefix}",
            member=token.member,
            token=token,
            request_id=getattr(request, "request_id", "") if request is not None else "",
            client_ip=client_ip(request) if request is not None else "",
        )


def client_ip(request: Any) -> str:
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


# How many events the current request has recorded; the API base uses it to audit any
# request that no service audited, and tests use it to insist that every request is audited.
_recorded: contextvars.ContextVar[int] = contextvars.ContextVar("audit_recorded", default=0)
# The (seq, hash) of the last event recorded in this context: a rolled-back transaction takes
# its event with it, so the API base checks the event still exists before trusting the count.
_last: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "audit_last", default=None
)


def recorded_count() -> int:
    return _recorded.get()


def reset_recorded() -> contextvars.Token[int]:
    _last.set(None)
    return _recorded.set(0)


def recorded_and_kept() -> bool:
    """Did this context record an event that was committed (not rolled back with its work)?"""
    last = _last.get()
    if _recorded.get() == 0 or last is None:
        return False
    return AuditEvent.objects.filter(seq=last[0], hash=last[1]).exists()


def record(
    *,
    actor: Actor,
    action: AuditAction | str,
    purpose: str = "",
    params: Any = None,
    result_count: int = 0,
    disclosed: dict[str, list[int]] | None = None,
    owners: set[str] | list[str] | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Call it inside the transaction of the work it records,
    as late as possible: it locks the chain head until that transaction commits."""
    # No savepoint: if the event cannot be written, the work it records must not commit either.
    with transaction.atomic(savepoint=False):
        head = ChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            ChainHead.objects.get_or_create(pk=1)
            head = ChainHead.objects.select_for_update().get(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            at=timezone.now(),
            actor_member=actor.member_slug,
            actor=actor.label,
            action=str(action),
            purpose=str(purpose or ""),
            request_id=actor.request_id,
            client_ip=actor.client_ip,
            params_digest=params_digest(params) if params is not None else "",
            result_count=result_count,
            disclosed={k: sorted(v) for k, v in (disclosed or {}).items() if v},
            owners=sorted(set(owners or ())),
            target=target,
            details=details or {},
            prev_hash=head.hash,
        )
        body = event.chained_body()
        body["at"] = format_at(event.at)
        event.hash = event_hash(head.hash, body)
        event.save(force_insert=True)
        ChainHead.objects.filter(pk=1).update(seq=event.seq, hash=event.hash)
    _recorded.set(_recorded.get() + 1)
    _last.set((event.seq, event.hash))
    return event

"""The access policy: the one place that decides who may see, receive or submit a signal.

Every rule exists twice — as a database filter (for ``Signal.objects.visible_to``) and as a
predicate on one signal (for ``recipients_for``) — side by side, so a member can never be
pushed by webhook what it could not query, and vice versa. The functions work on field names
and take members and signals as arguments; they import no views, serializers or tasks.

Rules (all must hold; docs/access-policies.md has worked examples):

1. The member is ``active`` and has signed the agreement (token validity, scopes and purposes
   are checked by authentication before the policy is asked).
2. The signal is ``active`` and unexpired (the owner also sees its retracted and expired ones).
3. The member is in the signal's audience: ``all``, ``group:<slug>`` or ``members:<slugs>``.
4. The member may receive the signal's category: it is in the member's category set (empty
   means all) and the member holds every attestation the category requires.
5. The ``research`` purpose returns aggregates only, never indicator values.
6. A member of a kind the exchange bars from receiving (``BEACON_BARRED_RECIPIENT_KINDS``,
   e.g. ``government``) is never a recipient, whatever the audience says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

RESEARCH = "research"


class MemberLike(Protocol):
    pk: Any
    slug: str
    kind: str
    status: str
    receive_categories: list[str]

    def attestation_kinds(self) -> frozenset[str]: ...

    def has_signed_agreement(self) -> bool: ...


class CategoryLike(Protocol):
    code: str
    required_attestations: list[str]


class SignalLike(Protocol):
    """What the policy reads from a signal: a model instance or a light row alike."""

    @property
    def owner_id(self) -> Any: ...

    @property
    def status(self) -> str: ...

    @property
    def expires_at(self) -> datetime | None: ...

    @property
    def audience_kind(self) -> str: ...

    @property
    def audience_group_id(self) -> Any: ...

    @property
    def audience_members(self) -> str: ...

    @property
    def category_id(self) -> Any: ...


# -- rule 1 and 6: who may take part --------------------------------------------------------
def member_may_read(member: MemberLike) -> bool:
    """Rule 1: an active member with a signed agreement."""
    return member.status == "active" and member.has_signed_agreement()


def member_may_receive(member: MemberLike) -> bool:
    """Rules 1 and 6: may read, and is not of a kind barred from receiving."""
    return member_may_read(member) and member.kind not in settings.BEACON_BARRED_RECIPIENT_KINDS


def check_can_submit(*, member: MemberLike) -> None:
    """Rule 1 for writes. Raises ``PermissionDenied`` if the member may not share."""
    if not member_may_read(member):
        raise PermissionDenied("Only active members that signed the agreement may share signals.")


# -- rule 2: live signals -------------------------------------------------------------------
def live_q(at: datetime | None = None) -> Q:
    """Rule 2 as a filter: active and not expired."""
    now = at or timezone.now()
    return Q(status="active") & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def is_live(signal: SignalLike, at: datetime | None = None) -> bool:
    """Rule 2 as a predicate."""
    now = at or timezone.now()
    return signal.status == "active" and (signal.expires_at is None or signal.expires_at > now)


# -- rule 3: audience -----------------------------------------------------------------------
def audience_q(member: MemberLike, group_ids: Iterable[Any]) -> Q:
    """Rule 3 as a filter, given the ids of the groups the member belongs to."""
    return (
        Q(audience_kind="all")
        | Q(audience_kind="group", audience_group_id__in=list(group_ids))
        | Q(audience_kind="members", audience_members__contains=f",{member.slug},")
    )


def in_audience(
    member: MemberLike, signal: SignalLike, group_ids: set[Any] | frozenset[Any]
) -> bool:
    """Rule 3 as a predicate."""
    if signal.audience_kind == "all":
        return True
    if signal.audience_kind == "group":
        return signal.audience_group_id in group_ids
    if signal.audience_kind == "members":
        return f",{member.slug}," in signal.audience_members
    return False


# -- rule 4: categories ---------------------------------------------------------------------
def receivable_categories(member: MemberLike, categories: Iterable[CategoryLike]) -> set[str]:
    """Rule 4: the category codes this member may receive."""
    wanted = set(member.receive_categories or [])
    held = member.attestation_kinds()
    return {
        c.code
        for c in categories
        if (not wanted or c.code in wanted) and set(c.required_attestations or []) <= held
    }


# -- rule 5: purposes -----------------------------------------------------------------------
def discloses_values(purpose: str) -> bool:
    """Rule 5: ``research`` reads return aggregates, never indicator values or signal ids."""
    return purpose != RESEARCH


# -- the two faces of the policy ------------------------------------------------------------
def visible_q(
    member: MemberLike,
    *,
    group_ids: Iterable[Any],
    category_ids: Iterable[Any],
    include_own: bool = True,
    at: datetime | None = None,
) -> Q:
    """The filter behind ``Signal.objects.visible_to``: the member's own signals (any status)
    plus other members' live signals that rules 1, 3, 4 and 6 let it receive."""
    own = Q(owner_id=member.pk)
    if not member_may_read(member):
        return Q(pk__in=[])
    if not member_may_receive(member):
        return own if include_own else Q(pk__in=[])
    others = (
        live_q(at) & audience_q(member, group_ids) & Q(category_id__in=list(category_ids)) & ~own
    )
    return (own | others) if include_own else others


def holds_q(
    member: MemberLike,
    *,
    group_ids: Iterable[Any],
    category_ids: Iterable[Any],
    at: datetime | None = None,
) -> Q:
    """The signals ``member`` may hold now: its own live ones and other members' that
    ``visible_q`` lets it receive — the filter twin of ``is_live(s) and (s.owner_id ==
    member.pk or may_receive(member, s, ...))``. The feed sends these as upserts and the rest of
    what the member was given as tombstones."""
    return visible_q(member, group_ids=group_ids, category_ids=category_ids, at=at) & live_q(at)


def may_receive(
    member: MemberLike,
    signal: SignalLike,
    *,
    group_ids: set[Any] | frozenset[Any],
    category_ids: set[Any] | frozenset[Any],
    at: datetime | None = None,
) -> bool:
    """The predicate behind ``recipients_for``: rules 1–4 and 6 for one member and one live
    signal of another member."""
    return (
        signal.owner_id != member.pk
        and member_may_receive(member)
        and is_live(signal, at)
        and in_audience(member, signal, group_ids)
        and signal.category_id in category_ids
    )


@dataclass(frozen=True)
class Audience:
    """The facts about one member that the policy needs: what groups it is in and what
    categories it may receive. Build once per fan-out batch with ``audiences()``."""

    member: Any
    group_ids: frozenset[Any]
    category_ids: frozenset[Any]


def audiences(members: Iterable[Any] | None = None) -> list[Audience]:
    """The receiving context of every active member (or of ``members``)."""
    from accounts.models import Member
    from signals.models import Category

    categories = list(Category.objects.all())
    if members is None:
        members = Member.objects.active().prefetch_related("attestations", "sharing_groups")
    out = []
    for member in members:
        codes = receivable_categories(member, categories)
        out.append(
            Audience(
                member=member,
                group_ids=frozenset(g.pk for g in member.sharing_groups.all()),
                category_ids=frozenset(c.pk for c in categories if c.code in codes),
            )
        )
    return out


def recipients_for(
    signal: SignalLike, *, context: list[Audience] | None = None, at: datetime | None = None
) -> list[Any]:
    """Every member (other than the owner) that may receive ``signal`` now. Fan-out calls this
    with a shared ``context``; it applies the same rules as ``visible_q``."""
    return [
        a.member
        for a in (context if context is not None else audiences())
        if may_receive(a.member, signal, group_ids=a.group_ids, category_ids=a.category_ids, at=at)
    ]

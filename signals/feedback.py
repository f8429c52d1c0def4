"""Feedback: a member's reaction to a signal it received, and the flagging it can lead to.

Signals are leads, not verdicts. A member that matched a signal reviews it under its own
policy and says what happened (``actioned`` with the action taken, ``not_actioned``,
``false_positive``, ``disputed``, ``seen``, ``helpful``). The owner learns it by webhook
(``feedback.created``) and in the totals on its signals. When enough distinct members call a
signal a false positive or dispute it, the signal is flagged to its owner and to the exchange's
administrators; the exchange never deletes or retracts a member's signal on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from accounts.models import Member
from exchange import audit, sequences
from exchange.audit import Actor, AuditAction
from exchange.delivery import outbox
from exchange.delivery.models import OutboxEvent
from signals.models import ActionTaken, Feedback, Reaction, Signal
from signals.services import ItemErrors, NotFound

logger = logging.getLogger(__name__)

MAX_NOTE_CHARS = 1000
MAX_ACTIONS = 5
# Reactions that say the signal was wrong; enough of them from distinct members flag it.
DISPUTING = frozenset({Reaction.FALSE_POSITIVE, Reaction.DISPUTED})
# A member either acted on a signal or did not: the newer of the two replaces the older.
EXCLUSIVE = {
    Reaction.ACTIONED: Reaction.NOT_ACTIONED,
    Reaction.NOT_ACTIONED: Reaction.ACTIONED,
}
FEEDBACK_FIELDS = {"reaction", "note", "action_taken", "purpose"}


class OwnSignal(Exception):
    """A member reacted to its own signal: feedback is what recipients report to the owner."""


@dataclass(frozen=True)
class FeedbackResult:
    feedback: Feedback
    created: bool
    replaced: list[str]
    flagged: bool


def _err(field_: str, detail: str) -> dict[str, Any]:
    return {"index": 0, "field": field_, "detail": detail}


def parse_actions(raw: Any) -> list[str]:
    """``action_taken`` as one code or a list of codes from ``ActionTaken``; sorted, unique."""
    if raw in (None, "", []):
        return []
    values = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(values, list)
        or len(values) > MAX_ACTIONS
        or not all(isinstance(v, str) for v in values)
    ):
        raise ItemErrors(
            [
                _err(
                    "action_taken",
                    f"action_taken is one code or a list of at most {MAX_ACTIONS} codes",
                )
            ]
        )
    unknown = sorted(set(values) - set(ActionTaken.values))
    if unknown:
        raise ItemErrors(
            [
                _err(
                    "action_taken",
                    f"unknown action(s) {', '.join(unknown)}; use {', '.join(ActionTaken.values)}",
                )
            ]
        )
    return sorted(set(values))


def actions_of(feedback: Feedback) -> list[str]:
    return [a for a in feedback.action_taken.split(",") if a]


def parse_feedback(body: Any) -> tuple[str, str, list[str]]:
    """Validate a feedback body: ``reaction``, optional ``note`` and ``action_taken``."""
    if not isinstance(body, dict):
        raise ItemErrors([_err("", "send a JSON object with a reaction")])
    errors: list[dict[str, Any]] = []
    unknown = sorted(set(body) - FEEDBACK_FIELDS)
    if unknown:
        errors.append(_err(unknown[0], f"unknown field(s): {', '.join(unknown)}"))
    reaction = body.get("reaction")
    if reaction not in Reaction.values:
        errors.append(_err("reaction", f"reaction must be one of {', '.join(Reaction.values)}"))
    note = body.get("note", "") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        errors.append(_err("note", f"note is a string of at most {MAX_NOTE_CHARS} characters"))
    actions: list[str] = []
    try:
        actions = parse_actions(body.get("action_taken"))
    except ItemErrors as exc:
        errors.extend(exc.errors)
    if actions and reaction != Reaction.ACTIONED and reaction in Reaction.values:
        errors.append(_err("action_taken", "action_taken goes with the 'actioned' reaction only"))
    if errors:
        raise ItemErrors(errors)
    return str(reaction), note.strip(), actions


@transaction.atomic
def feedback_create(
    *, member: Member, signal_id: int, purpose: str, body: Any, actor: Actor
) -> FeedbackResult:
    """Record ``member``'s reaction to a signal it can see (else ``NotFound``, answered 404).

    One current row per (signal, member, reaction): reacting again replaces its note and
    action. ``actioned`` and ``not_actioned`` replace each other. Audited as
    ``feedback.create``; an outbox row tells the owner by webhook; crossing the dispute
    threshold flags the signal (``signal.flag``)."""
    signal = (
        Signal.objects.visible_to(member, purpose)
        .select_for_update()
        .select_related("owner", "category", "indicator")
        .filter(pk=signal_id)
        .first()
    )
    if signal is None:
        raise NotFound()
    if signal.owner_id == member.pk:
        raise OwnSignal()
    reaction, note, actions = parse_feedback(body)
    now = timezone.now()
    feedback = Feedback.objects.filter(signal=signal, member=member, reaction=reaction).first()
    created = feedback is None
    if feedback is None:
        feedback = Feedback(signal=signal, member=member, reaction=reaction, created_at=now)
    feedback.note = note
    feedback.action_taken = ",".join(actions)
    feedback.updated_at = now
    feedback.save()
    replaced: list[str] = []
    other = EXCLUSIVE.get(Reaction(reaction))
    if other is not None:
        deleted, _ = Feedback.objects.filter(signal=signal, member=member, reaction=other).delete()
        if deleted:
            replaced.append(str(other))

    seq = sequences.allocate(sequences.FEED)
    outbox.add(
        event=OutboxEvent.FEEDBACK_CREATED, seq_from=seq, seq_to=seq, feedback_id=feedback.pk
    )
    audit.record(
        actor=actor,
        action=AuditAction.FEEDBACK_CREATE,
        purpose=purpose,
        target=f"signal:{signal.pk}",
        params={"reaction": reaction, "note": note, "action_taken": actions},
        result_count=1,
        owners={signal.owner.slug},
        details={
            "reaction": reaction,
            "action_taken": actions,
            "created": created,
            "replaced": replaced,
            "category": signal.category.code,
            "type": signal.indicator.type,
            "feedback_id": feedback.pk,
        },
    )
    flagged = False
    if reaction in DISPUTING and signal.flagged_at is None:
        flagged = _flag_if_disputed(signal=signal, feedback=feedback, now=now)
    return FeedbackResult(feedback=feedback, created=created, replaced=replaced, flagged=flagged)


def disputing_members(signal: Signal) -> int:
    return (
        Feedback.objects.filter(signal=signal, reaction__in=DISPUTING)
        .values("member_id")
        .distinct()
        .count()
    )


def _flag_if_disputed(*, signal: Signal, feedback: Feedback, now: Any) -> bool:
    """Flag ``signal`` once ``BEACON_DISPUTE_FLAG_THRESHOLD`` distinct members disputed it or
    called it a false positive. Flagging informs; it never changes who receives the signal."""
    count = disputing_members(signal)
    threshold = settings.BEACON_DISPUTE_FLAG_THRESHOLD
    if count < threshold:
        return False
    signal.flagged_at = now
    signal.save(update_fields=["flagged_at"])
    seq = sequences.allocate(sequences.FEED)
    outbox.add(event=OutboxEvent.SIGNAL_FLAGGED, seq_from=seq, seq_to=seq, feedback_id=feedback.pk)
    audit.record(
        actor=Actor.system("feedback"),
        action=AuditAction.SIGNAL_FLAG,
        target=f"signal:{signal.pk}",
        result_count=count,
        owners={signal.owner.slug},
        details={
            "owner": signal.owner.slug,
            "category": signal.category.code,
            "disputing_members": count,
            "threshold": threshold,
        },
    )
    signal_id, owner = signal.pk, signal.owner.slug
    transaction.on_commit(lambda: _tell_admins(signal_id, owner, count))
    return True


def _tell_admins(signal_id: int, owner: str, count: int) -> None:
    # The flag is already committed, audited and visible in the admin; e-mail is a courtesy,
    # so a mail server that is down must not fail anything.
    try:
        mail_admins(
            f"Signal {signal_id} flagged for review",
            f"Signal {signal_id} of member {owner} was called a false positive or disputed by "
            f"{count} members. Review it in the admin (Signals, filter 'flagged'). The exchange "
            "does not retract it on its own; its owner has been told by webhook.",
            fail_silently=True,
        )
    except Exception:  # noqa: BLE001 - see above
        logger.warning("could not e-mail the administrators about signal %s", signal_id)

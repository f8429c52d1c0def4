"""How signals leave the exchange: in API answers, feed events and webhook events alike."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from signals import types
from signals.models import Feedback, Signal
from signals.querysets import ids_in


def feedback_totals(signal_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Reaction counts per signal: aggregates only, never which member reacted."""
    totals: dict[int, dict[str, int]] = defaultdict(dict)
    ids = list(signal_ids)
    if not ids:
        return totals
    counts: Counter[tuple[int, str]] = Counter()
    for chunk_start in range(0, len(ids), 5000):
        chunk = ids[chunk_start : chunk_start + 5000]
        for signal_id, reaction in Feedback.objects.filter(ids_in("signal_id", chunk)).values_list(
            "signal_id", "reaction"
        ):
            counts[(signal_id, reaction)] += 1
    for (signal_id, reaction), n in counts.items():
        totals[signal_id][reaction] = n
    return totals


def owner_label(signal: Signal, viewer_id: Any) -> str:
    if signal.owner_id == viewer_id:
        return signal.owner.slug
    return "anonymous" if signal.owner.attribution == "anonymous" else signal.owner.slug


def signal_out(
    signal: Signal, *, viewer_id: Any, feedback: dict[str, int] | None = None
) -> dict[str, Any]:
    """A signal as ``viewer`` may see it. Peppered identifier values never leave the exchange:
    members match them by sending their own digests to /match."""
    type_ = types.get(signal.indicator.type)
    body: dict[str, Any] = {
        "id": signal.pk,
        "type": signal.indicator.type,
        "indicator_id": signal.indicator_id,
        "value": None if (type_ is None or type_.peppered) else signal.indicator.value,
        "category": signal.category.code,
        "tags": signal.tags,
        "confidence": signal.confidence,
        "severity": signal.severity,
        "tlp": signal.tlp,
        "owner": owner_label(signal, viewer_id),
        "status": signal.status,
        "expires_at": signal.expires_at,
        "created_at": signal.created_at,
        "updated_at": signal.updated_at,
        "bundle_id": str(signal.bundle_id) if signal.bundle_id else None,
        "seq": signal.seq,
        "feedback": feedback or {},
    }
    if type_ is not None and type_.match_kind == "vpdq":
        frames = getattr(signal.indicator, "frames", None)
        body["frames"] = frames.text if frames is not None else None
    if signal.quality is not None:
        body["quality"] = signal.quality
    if signal.lang:
        body["lang"] = signal.lang
    if signal.owner_id == viewer_id:
        body.update(
            audience=signal.audience,
            external_id=signal.external_id,
            retracted_at=signal.retracted_at,
            retract_reason=signal.retract_reason,
            flagged=signal.flagged_at is not None,
        )
    return body


def tombstone_out(signal: Signal) -> dict[str, Any]:
    """What a member learns when a signal leaves its view: the id it already had, no more."""
    return {
        "id": signal.pk,
        "type": signal.indicator.type,
        "indicator_id": signal.indicator_id,
        "status": "deleted",
    }


def reactor_label(feedback: Feedback) -> str:
    """Who reacted, as the owner may learn it: the member's slug, or ``anonymous`` for a
    member that takes part without attribution."""
    return "anonymous" if feedback.member.attribution == "anonymous" else feedback.member.slug


def feedback_out(feedback: Feedback) -> dict[str, Any]:
    """One reaction as its author and the signal's owner see it."""
    return {
        "id": feedback.pk,
        "signal_id": feedback.signal_id,
        "reaction": feedback.reaction,
        "action_taken": [a for a in feedback.action_taken.split(",") if a],
        "note": feedback.note,
        "member": reactor_label(feedback),
        "created_at": feedback.created_at,
        "updated_at": feedback.updated_at,
    }


def _owner_signal_summary(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.pk,
        "type": signal.indicator.type,
        "indicator_id": signal.indicator_id,
        "category": signal.category.code,
        "status": signal.status,
        "external_id": signal.external_id,
        "flagged": signal.flagged_at is not None,
        "flagged_at": signal.flagged_at,
        "feedback": feedback_totals([signal.pk]).get(signal.pk, {}),
    }


def feedback_event(feedback_id: int, seq: int) -> dict[str, Any] | None:
    """The webhook event for outbox ``feedback.created``, sent to the signal's owner only:
    ``{"seq", "op": "feedback", "feedback": {...}, "signal": {...}}``. ``None`` if the
    reaction was since replaced (``actioned`` ↔ ``not_actioned``)."""
    feedback = (
        Feedback.objects.select_related(
            "member", "signal__indicator", "signal__category", "signal__owner"
        )
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        return None
    return {
        "seq": seq,
        "op": "feedback",
        "feedback": feedback_out(feedback),
        "signal": _owner_signal_summary(feedback.signal),
    }


def flag_event(feedback_id: int, seq: int) -> dict[str, Any] | None:
    """The webhook event for outbox ``signal.flagged``, sent to the signal's owner only:
    ``{"seq", "op": "flag", "signal": {...}}``."""
    feedback = (
        Feedback.objects.select_related("signal__indicator", "signal__category")
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        return None
    return {"seq": seq, "op": "flag", "signal": _owner_signal_summary(feedback.signal)}

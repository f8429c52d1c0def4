"""The figures of the transparency report and the admin dashboard.

Every figure is counted from the audit log (what members shared, matched and received, what was
retracted, expired and delivered) and from the feedback members reported; nothing is typed in.

Small counts: totals are published as counted, but a breakdown cell (a category, a type, a
reaction, an action, a week…) counting between 1 and ``k - 1`` is withheld — ``None`` here,
``null`` in JSON, "< k" in HTML — so that no figure singles out one member's activity. A rate is
withheld when its denominator is below ``k``. Free-text retraction reasons given fewer than ``k``
times are counted together as "other reasons".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from exchange.audit import AuditAction
from exchange.audit.models import AuditEvent
from exchange.reports.period import Period

SHARE_ACTIONS = (AuditAction.SIGNAL_SUBMIT, AuditAction.SIGNAL_IMPORT)
MATCH_ACTIONS = (AuditAction.SIGNAL_MATCH, AuditAction.SIGNAL_MATCH_TEXT)
RECEIVE_ACTIONS = (
    *MATCH_ACTIONS,
    AuditAction.SIGNAL_FEED,
    AuditAction.SIGNAL_GET,
    AuditAction.SIGNAL_EXPORT,
    AuditAction.TAXII_READ,
)
REPORTED_ACTIONS = (
    *SHARE_ACTIONS,
    *RECEIVE_ACTIONS,
    AuditAction.FEEDBACK_CREATE,
    AuditAction.SIGNAL_RETRACT,
    AuditAction.SIGNAL_EXPIRE,
    AuditAction.SIGNAL_FLAG,
    AuditAction.DELIVERY_SENT,
    AuditAction.DELIVERY_FAILED,
)
OTHER_REASONS = "other reasons"


def small_count_threshold() -> int:
    return int(settings.BEACON_REPORT_MIN_COUNT)


def withhold(value: int, k: int) -> int | None:
    return None if 0 < value < k else value


def withhold_all(counts: Mapping[str, int], k: int) -> dict[str, int | None]:
    return {key: withhold(value, k) for key, value in sorted(counts.items())}


def rate(numerator: int, denominator: int, k: int) -> float | None:
    if denominator == 0 or denominator < k:
        return None
    return round(numerator / denominator, 4)


def week_of(at: datetime) -> date:
    day = at.date()
    return day - timedelta(days=day.weekday())


def day_of(at: datetime) -> date:
    return at.date()


class _Tally:
    """One pass over the period's audit events, counting everything the report shows."""

    def __init__(self, bucket: Callable[[datetime], date] = week_of) -> None:
        self.bucket = bucket
        self.sharing: set[str] = set()
        self.receiving: set[str] = set()
        self.reacting: set[str] = set()
        self.shared_by_type: Counter[str] = Counter()
        self.shared_by_category: Counter[str] = Counter()
        self.shared_by_bucket: dict[date, Counter[str]] = defaultdict(Counter)
        self.match_requests: Counter[str] = Counter()
        self.match_items: Counter[str] = Counter()
        self.match_items_matched: Counter[str] = Counter()
        self.match_signals: Counter[str] = Counter()
        self.matches_by_bucket: dict[date, Counter[str]] = defaultdict(Counter)
        self.feedback: dict[tuple[str, str, str], tuple[str, list[str]]] = {}
        self.reactions: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.actions_by_category: Counter[str] = Counter()
        self.signals_with_feedback: set[str] = set()
        self.signals_false_positive: set[str] = set()
        self.signals_disputed: set[str] = set()
        self.retractions: Counter[str] = Counter()
        self.retraction_reasons: Counter[str] = Counter()
        self.retractions_by_category: Counter[str] = Counter()
        self.expired = 0
        self.expired_by_category: Counter[str] = Counter()
        self.flagged = 0
        self.deliveries_sent = 0
        self.delivered_events = 0
        self.deliveries_failed = 0
        self.deliveries_by_bucket: dict[date, Counter[str]] = defaultdict(Counter)

    def add(self, row: dict[str, Any]) -> None:
        action, member, details = row["action"], row["actor_member"], row["details"] or {}
        week = self.bucket(row["at"])
        if action in SHARE_ACTIONS:
            if member:
                self.sharing.add(member)
            for key, count in (details.get("shared") or {}).items():
                type_, _, category = key.partition("|")
                self.shared_by_type[type_] += count
                self.shared_by_category[category] += count
                self.shared_by_bucket[week][category] += count
        if action in RECEIVE_ACTIONS and member:
            self.receiving.add(member)
        if action in MATCH_ACTIONS:
            purpose = row["purpose"] or "unspecified"
            self.match_requests[purpose] += 1
            self.match_items[purpose] += int(details.get("items", 0) or 0)
            self.match_items_matched[purpose] += int(details.get("items_matched", 0) or 0)
            self.match_signals[purpose] += row["result_count"]
            self.matches_by_bucket[week][purpose] += row["result_count"]
        elif action == AuditAction.FEEDBACK_CREATE:
            self._feedback(member, row["target"], details)
        elif action == AuditAction.SIGNAL_RETRACT:
            self.retractions[details.get("by") or "owner"] += 1
            self.retraction_reasons[(details.get("reason") or "").strip() or "no reason"] += 1
            self.retractions_by_category[details.get("category") or "unknown"] += 1
        elif action == AuditAction.SIGNAL_EXPIRE:
            self.expired += row["result_count"]
            self.expired_by_category.update(details.get("by_category") or {})
        elif action == AuditAction.SIGNAL_FLAG:
            self.flagged += 1
        elif action == AuditAction.DELIVERY_SENT:
            self.deliveries_sent += 1
            self.delivered_events += int(details.get("events", row["result_count"]) or 0)
            self.deliveries_by_bucket[week]["delivered"] += 1
        elif action == AuditAction.DELIVERY_FAILED:
            self.deliveries_failed += 1
            self.deliveries_by_bucket[week]["failed"] += 1

    def _feedback(self, member: str, target: str, details: dict[str, Any]) -> None:
        """Keep each member's current reactions: a changed note or action replaces the one
        reported before, and ``actioned``/``not_actioned`` replace each other."""
        if member:
            self.reacting.add(member)
        reaction = details.get("reaction") or "unknown"
        for other in details.get("replaced") or []:
            self.feedback.pop((member, target, other), None)
        self.feedback[(member, target, reaction)] = (
            details.get("category") or "unknown",
            list(details.get("action_taken") or []),
        )

    def finish(self) -> None:
        for (_, target, reaction), (category, actions) in self.feedback.items():
            self.reactions[reaction] += 1
            self.signals_with_feedback.add(target)
            if reaction == "false_positive":
                self.signals_false_positive.add(target)
            elif reaction == "disputed":
                self.signals_disputed.add(target)
            if reaction == "actioned":
                self.actions_by_category[category] += 1
                self.actions.update(actions)


def events_in(
    period: Period, actions: Iterable[str] = REPORTED_ACTIONS
) -> Iterator[dict[str, Any]]:
    rows = (
        AuditEvent.objects.filter(
            at__gte=period.start, at__lt=period.end, action__in=[str(a) for a in actions]
        )
        .order_by("seq")
        .values("at", "action", "actor_member", "purpose", "result_count", "target", "details")
    )
    return cast(Iterator[dict[str, Any]], rows.iterator(chunk_size=2000))


def transparency(period: Period, *, k: int | None = None) -> dict[str, Any]:
    """The report's figures for ``period`` as a JSON-ready dict."""
    from accounts.models import Attribution, Member

    k = small_count_threshold() if k is None else k
    tally = _Tally()
    for row in events_in(period):
        tally.add(row)
    tally.finish()
    weeks = period.weeks()
    participating = tally.sharing | tally.receiving | tally.reacting
    named = sorted(
        Member.objects.filter(slug__in=participating, attribution=Attribution.NAMED).values_list(
            "name", flat=True
        )
    )
    categories = sorted(tally.shared_by_category)
    purposes = sorted(tally.match_requests)
    reasons: Counter[str] = Counter()
    for reason, count in tally.retraction_reasons.items():
        reasons[reason if count >= k else OTHER_REASONS] += count
    reviewed = len(tally.signals_with_feedback)
    attempts = tally.deliveries_sent + tally.deliveries_failed
    return {
        "period": period.as_dict(),
        "generated_at": timezone.now().isoformat(),
        "small_count_threshold": k,
        "members": {
            "participating": len(participating),
            "sharing": len(tally.sharing),
            "receiving": len(tally.receiving),
            "reporting_feedback": len(tally.reacting),
            "named": named,
        },
        "signals": {
            "shared": sum(tally.shared_by_type.values()),
            "by_type": withhold_all(tally.shared_by_type, k),
            "by_category": withhold_all(tally.shared_by_category, k),
            "weekly": [
                {
                    "week": week.isoformat(),
                    "by_category": {
                        c: withhold(tally.shared_by_bucket[week][c], k) for c in categories
                    },
                }
                for week in weeks
            ],
            "expired": tally.expired,
            "flagged": tally.flagged,
        },
        "matches": {
            "requests": sum(tally.match_requests.values()),
            "items_checked": sum(tally.match_items.values()),
            "items_matched": sum(tally.match_items_matched.values()),
            "signals_matched": sum(tally.match_signals.values()),
            "by_purpose": {
                p: {
                    "requests": withhold(tally.match_requests[p], k),
                    "items_checked": withhold(tally.match_items[p], k),
                    "items_matched": withhold(tally.match_items_matched[p], k),
                    "signals_matched": withhold(tally.match_signals[p], k),
                }
                for p in purposes
            },
            "weekly": [
                {
                    "week": week.isoformat(),
                    "signals_matched": withhold(sum(tally.matches_by_bucket[week].values()), k),
                }
                for week in weeks
            ],
        },
        "feedback": {
            "reactions": sum(tally.reactions.values()),
            "by_reaction": withhold_all(tally.reactions, k),
            "actions": sum(tally.actions.values()),
            "by_action": withhold_all(tally.actions, k),
            "actioned_by_category": withhold_all(tally.actions_by_category, k),
            "signals_reviewed": reviewed,
            "false_positive_rate": rate(len(tally.signals_false_positive), reviewed, k),
            "dispute_rate": rate(len(tally.signals_disputed), reviewed, k),
        },
        "retractions": {
            "total": sum(tally.retractions.values()),
            "by_owner": tally.retractions["owner"],
            "by_exchange": tally.retractions["exchange"],
            "by_reason": withhold_all(reasons, k),
            "by_category": withhold_all(tally.retractions_by_category, k),
        },
        "deliveries": {
            "delivered": tally.deliveries_sent,
            "events_delivered": tally.delivered_events,
            "failed": tally.deliveries_failed,
            "success_rate": rate(tally.deliveries_sent, attempts, k),
            "weekly": [
                {
                    "week": week.isoformat(),
                    "delivered": withhold(tally.deliveries_by_bucket[week]["delivered"], k),
                    "failed": withhold(tally.deliveries_by_bucket[week]["failed"], k),
                }
                for week in weeks
            ],
        },
    }


def dashboard(*, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Daily figures for the admin dashboard over the last ``days`` days, counted like the
    report's (exchange staff see them unwithheld), plus the delivery backlog right now."""
    from exchange.delivery.models import Delivery, DeliveryStatus, OutboxEntry

    now = now or timezone.now()
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    period = Period(f"last {days} days", first, now + timedelta(microseconds=1))
    tally = _Tally(bucket=day_of)
    for row in events_in(period):
        tally.add(row)
    tally.finish()
    day_list = [first.date() + timedelta(days=i) for i in range(days)]
    categories = sorted(tally.shared_by_category)
    return {
        "days": [d.isoformat() for d in day_list],
        "categories": categories,
        "shared": {c: [tally.shared_by_bucket[d][c] for d in day_list] for c in categories},
        "matched": [sum(tally.matches_by_bucket[d].values()) for d in day_list],
        "reactions": dict(sorted(tally.reactions.items())),
        "delivered": [tally.deliveries_by_bucket[d]["delivered"] for d in day_list],
        "failed": [tally.deliveries_by_bucket[d]["failed"] for d in day_list],
        "backlog": {
            "outbox": OutboxEntry.objects.filter(processed_at__isnull=True).count(),
            "deliveries_pending": Delivery.objects.filter(status=DeliveryStatus.PENDING).count(),
            "deliveries_dead": Delivery.objects.filter(status=DeliveryStatus.DEAD).count(),
        },
    }

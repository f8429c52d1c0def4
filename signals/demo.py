"""A quarter of demo activity, so a new exchange has a transparency report and a dashboard to show.

The demo members share, match, react and retract through the same services as the API, with
the clock moved back day by day (``time_machine``), so every figure comes from real audit events
and feedback. It runs only on a fresh demo database, before any other activity, so the audit
log's timestamps still only move forward. Values are hashes of made-up identifiers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Member
from client.normalize import identifier_digest
from exchange.audit import Actor
from signals.feedback import feedback_create
from signals.services import signal_match, signal_retract_own, signal_submit

CATEGORIES = (
    ("csea.grooming", 6),
    ("csea.sextortion", 5),
    ("csea.csam", 4),
    ("tfgbv.ncii", 3),
    ("tfgbv.cyberstalking", 2),
    ("financial.sextortion_payment", 2),
)
TYPES = ("email", "username", "phone", "md5", "pdq", "url")
ACTIONS = (
    "account_terminated",
    "account_suspended",
    "content_removed",
    "reported_to_hotline",
    "upload_blocked",
)
RETRACTION_REASONS = (
    ("successful user appeal", 5),
    ("shared in error", 3),
    ("duplicate of an earlier signal", 2),
)


class DemoClock:
    """The frozen clock the history is played on: ``at(moment)`` jumps, ``step()`` moves on a
    few minutes. Never moves backwards."""

    def __init__(self, traveller: Any, start: datetime) -> None:
        self._traveller = traveller
        self.now = start

    def at(self, moment: datetime) -> None:
        self.now = max(self.now, moment)
        self._traveller.move_to(self.now)

    def step(self, rng: random.Random, most: int = 10) -> None:
        self.at(self.now + timedelta(minutes=rng.randint(1, most)))


@contextmanager
def clock_at(start: datetime) -> Iterator[DemoClock]:
    """Freeze the clock at ``start`` for the block (``time_machine``, a development tool)."""
    import time_machine

    with time_machine.travel(start, tick=False) as traveller:
        yield DemoClock(traveller, start)


def history_start(weeks: int) -> datetime:
    return (timezone.now() - timedelta(weeks=weeks)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )


def _value(rng: random.Random, type_: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """An upload item's type-specific fields and the match item for the same value."""
    seed = f"demo-{type_}-{n}"
    if type_ in {"email", "username", "phone"}:
        raw = {
            "email": f"suspect{n}@example.test",
            "username": f"suspect_{n}",
            "phone": f"+44 20 7946 {n % 10000:04d}",
        }[type_]
        digest = identifier_digest(type_, raw, platform="demo", region="GB")
        return {"type": type_, "value": digest}, {"type": type_, "value": digest}
    if type_ == "md5":
        value = hashlib.md5(seed.encode()).hexdigest()  # noqa: S324 - a content hash, not a secret
        return {"type": "md5", "value": value}, {"type": "md5", "value": value}
    if type_ == "pdq":
        value = hashlib.sha256(seed.encode()).hexdigest()
        return {"type": "pdq", "value": value, "quality": rng.randint(60, 100)}, {
            "type": "pdq",
            "value": value,
        }
    url = f"https://files.example.test/s/{hashlib.sha1(seed.encode()).hexdigest()[:12]}"  # noqa: S324
    return {"type": "url", "value": url}, {"type": "url", "value": url}


def seed_history(
    members: list[Member],
    *,
    weeks: int,
    clock: DemoClock,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Play ``weeks`` weeks of activity among ``members``, a day at a time from the clock's
    present; each day's activity stays within its working hours."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    actors = {m.pk: Actor(label=f"demo:{m.slug}", member=m) for m in members}
    shared: list[tuple[int, int, dict[str, Any]]] = []  # (signal id, owner pk, match item)
    counts = {"signals": 0, "matches": 0, "feedback": 0, "retractions": 0}
    serial = 0
    days = weeks * 7
    first = clock.now
    for day in range(days):
        clock.at(first + timedelta(days=day))
        weekday = clock.now.weekday() < 5
        for member in members:
            if rng.random() < (0.8 if weekday else 0.3):
                items, matchable = [], []
                for _ in range(rng.randint(2, 7)):
                    serial += 1
                    type_ = rng.choice(TYPES)
                    upload, match = _value(rng, type_, serial)
                    category = rng.choices(
                        [c for c, _ in CATEGORIES], weights=[w for _, w in CATEGORIES]
                    )[0]
                    items.append({**upload, "category": category, "audience": "all"})
                    matchable.append(match)
                clock.step(rng)
                result = signal_submit(member=member, items=items, actor=actors[member.pk])
                for answer, match in zip(result.signals, matchable, strict=True):
                    shared.append((answer["id"], member.pk, match))
                counts["signals"] += result.created
            clock.step(rng)
            others = [s for s in shared if s[1] != member.pk]
            if not others:
                continue
            for _ in range(rng.randint(1, 3)):
                hits = rng.sample(others, min(len(others), rng.randint(0, 4)))
                misses = [_value(rng, rng.choice(TYPES), 10**6 + rng.randint(0, 10**6))[1]]
                purpose = rng.choices(
                    ["detection", "investigation", "research"], weights=[6, 3, 1]
                )[0]
                clock.step(rng)
                signal_match(
                    member=member,
                    purpose=purpose,
                    items=[h[2] for h in hits] + misses * rng.randint(3, 12),
                    actor=actors[member.pk],
                )
                counts["matches"] += 1
                if purpose == "research":
                    continue
                for signal_id, _, _ in hits:
                    body = _reaction(rng)
                    if body is None:
                        continue
                    clock.step(rng)
                    with transaction.atomic():
                        feedback_create(
                            member=member,
                            signal_id=signal_id,
                            purpose=purpose,
                            body=body,
                            actor=actors[member.pk],
                        )
                    counts["feedback"] += 1
        if shared and rng.random() < 0.15:
            signal_id, owner_pk, _ = shared.pop(rng.randrange(len(shared)))
            owner = next(m for m in members if m.pk == owner_pk)
            reason = rng.choices(
                [r for r, _ in RETRACTION_REASONS], weights=[w for _, w in RETRACTION_REASONS]
            )[0]
            clock.step(rng)
            signal_retract_own(
                member=owner, signal_id=signal_id, reason=reason, actor=actors[owner_pk]
            )
            counts["retractions"] += 1
        if progress:
            progress(day + 1, days)
    return counts


def _reaction(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.45:
        return {"reaction": "actioned", "action_taken": rng.sample(ACTIONS, rng.randint(1, 2))}
    if roll < 0.6:
        return {"reaction": "seen"}
    if roll < 0.7:
        return {"reaction": "not_actioned", "note": "below our policy threshold"}
    if roll < 0.76:
        return {"reaction": "false_positive"}
    if roll < 0.79:
        return {"reaction": "disputed"}
    if roll < 0.85:
        return {"reaction": "helpful"}
    return None

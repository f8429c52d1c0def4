"""A random walk through uploads, retractions, audience and group changes, suspensions and
reactivations. After every step, for every member, match, get and a feed consumer must agree
exactly with a reference model of the policy rules written here, independently of the code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from accounts.models import Member, MemberKind, SharingGroup
from accounts.services import (
    group_add_member,
    group_create,
    group_remove_member,
    member_activate,
    member_suspend,
)
from exchange.audit import Actor
from signals import services
from signals.models import Signal
from tests.conftest import SYSTEM, make_member
from tests.signals.conftest import digest

SLUGS = ["a", "b", "c", "p", "g"]  # p lacks the user_appeals attestation; g is a government body
UPLOADERS = ["a", "b", "c", "p"]
VALUES = [digest(f"v{i}") for i in range(5)]
CATEGORIES = ["csea.csam", "tfgbv.ncii"]


@dataclass
class ModelSignal:
    owner: str
    value: str
    audience: str
    category: str
    live: bool = True


@dataclass
class Model:
    active: set[str] = field(default_factory=lambda: set(SLUGS))
    group: set[str] = field(default_factory=lambda: {"a", "b"})
    signals: dict[int, ModelSignal] = field(default_factory=dict)

    def in_audience(self, viewer: str, s: ModelSignal) -> bool:
        if s.audience == "all":
            return True
        if s.audience == "group:grp":
            return viewer in self.group
        return viewer in s.audience.removeprefix("members:").split(",")

    def receives(self, viewer: str, s: ModelSignal) -> bool:
        return viewer != "g" and not (viewer == "p" and s.category == "tfgbv.ncii")

    def sees(self, viewer: str, s: ModelSignal) -> bool:
        """get: the owner sees its own in any status; others see live signals they receive."""
        if viewer not in self.active:
            return False
        if s.owner == viewer:
            return True
        return s.live and self.in_audience(viewer, s) and self.receives(viewer, s)

    def live_for(self, viewer: str) -> set[int]:
        return {sid for sid, s in self.signals.items() if s.live and self.sees(viewer, s)}


class PolicyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.members = {
            slug: make_member(
                slug,
                kind=MemberKind.GOVERNMENT if slug == "g" else MemberKind.PLATFORM,
                attest=["agreement", "human_review"] if slug == "p" else None,
            )
            for slug in SLUGS
        }
        self.group = group_create(
            slug="grp", name="grp", members=[self.members["a"], self.members["b"]], actor=SYSTEM
        )
        self.model = Model()
        self.cursors: dict[str, dict | None] = {slug: None for slug in SLUGS}
        self.held: dict[str, set[int]] = {slug: set() for slug in SLUGS}

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def actor(self, slug: str) -> Actor:
        return Actor(label=f"test:{slug}", member=self.members[slug])

    def refresh(self, slug: str) -> Member:
        member = Member.objects.get(slug=slug)
        self.members[slug] = member
        return member

    # -- steps -------------------------------------------------------------------------------
    @rule(
        owner=st.sampled_from(UPLOADERS),
        value=st.sampled_from(VALUES),
        category=st.sampled_from(CATEGORIES),
        audience=st.sampled_from(["all", "group:grp", "members:b", "members:c,p", "members:g,a"]),
    )
    def upload(self, owner: str, value: str, category: str, audience: str) -> None:
        if owner not in self.model.active or (
            audience == "group:grp" and owner not in self.model.group
        ):
            return
        result = services.signal_submit(
            member=self.refresh(owner),
            items=[{"type": "sha256", "value": value, "category": category, "audience": audience}],
            actor=self.actor(owner),
        )
        sid = result.signals[0]["id"]
        self.model.signals[sid] = ModelSignal(
            owner=owner, value=value, audience=audience, category=category
        )

    @precondition(lambda self: any(s.live for s in self.model.signals.values()))
    @rule(data=st.data())
    def retract(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(i for i, s in self.model.signals.items() if s.live)))
        s = self.model.signals[sid]
        services.signal_retract_own(
            member=self.refresh(s.owner),
            signal_id=sid,
            reason="appeal upheld",
            actor=self.actor(s.owner),
        )
        s.live = False

    @precondition(lambda self: any(s.live for s in self.model.signals.values()))
    @rule(
        data=st.data(), audience=st.sampled_from(["all", "members:b", "members:c,p", "group:grp"])
    )
    def change_audience(self, data: st.DataObject, audience: str) -> None:
        sid = data.draw(st.sampled_from(sorted(i for i, s in self.model.signals.items() if s.live)))
        s = self.model.signals[sid]
        if audience == "group:grp" and s.owner not in self.model.group:
            return
        services.signal_update(
            member=self.refresh(s.owner),
            signal_id=sid,
            changes={"audience": audience},
            actor=self.actor(s.owner),
        )
        s.audience = audience

    @rule(slug=st.sampled_from(SLUGS), join=st.booleans())
    def change_group(self, slug: str, join: bool) -> None:
        group = SharingGroup.objects.get(slug="grp")
        if join:
            group_add_member(group=group, member=self.refresh(slug), actor=SYSTEM)
            self.model.group.add(slug)
        else:
            group_remove_member(group=group, member=self.refresh(slug), actor=SYSTEM)
            self.model.group.discard(slug)

    @rule(slug=st.sampled_from(SLUGS), active=st.booleans())
    def suspend_or_reactivate(self, slug: str, active: bool) -> None:
        if active:
            member_activate(member=self.refresh(slug), actor=SYSTEM)
            self.model.active.add(slug)
        else:
            member_suspend(member=self.refresh(slug), actor=SYSTEM)
            self.model.active.discard(slug)

    # -- the check after every step --------------------------------------------------------
    @invariant()
    def every_member_sees_exactly_the_model(self) -> None:
        for slug in SLUGS:
            member = self.refresh(slug)
            expected_live = self.model.live_for(slug)
            if slug not in self.model.active:
                # A suspended member cannot authenticate; the policy itself also shows it nothing.
                assert not Member.objects.get(slug=slug).is_active
                assert services.signal_match(
                    member=member,
                    purpose="detection",
                    items=[{"type": "sha256", "value": v} for v in VALUES],
                    actor=self.actor(slug),
                )["results"] == [{"index": i, "matches": []} for i in range(len(VALUES))]
                continue
            answer = services.signal_match(
                member=member,
                purpose="detection",
                items=[{"type": "sha256", "value": v} for v in VALUES],
                actor=self.actor(slug),
            )
            matched = {
                s["id"] for r in answer["results"] for m in r["matches"] for s in m["signals"]
            }
            assert matched == expected_live, (slug, matched, expected_live)
            # get answers from exactly this queryset (signals.services.signal_get).
            gettable = set(
                Signal.objects.visible_to(member, "investigation")
                .filter(pk__in=list(self.model.signals))
                .values_list("pk", flat=True)
            )
            assert gettable == {
                sid for sid, s in self.model.signals.items() if self.model.sees(slug, s)
            }, (slug, gettable)
            while True:
                page = services.signal_feed(
                    member=member,
                    purpose="detection",
                    cursor=self.cursors[slug],
                    limit=1000,
                    actor=self.actor(slug),
                )
                for event in page.events:
                    if event["op"] == "upsert":
                        self.held[slug].add(event["signal"]["id"])
                    else:
                        self.held[slug].discard(event["signal"]["id"])
                self.cursors[slug] = page.next_cursor
                if not page.more:
                    break
            assert self.held[slug] == expected_live, (slug, self.held[slug], expected_live)


EXAMPLES = int(os.environ.get("BEACON_STATE_MACHINE_EXAMPLES", "200"))


@pytest.mark.django_db
def test_no_member_ever_sees_matches_pulls_or_gets_what_it_should_not(db):
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        PolicyMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=5,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )

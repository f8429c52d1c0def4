"""Feedback: who may react, what the owner sees, replacement rules and flagging."""

from __future__ import annotations

import pytest
from django.core import mail

from exchange.audit.models import AuditEvent
from exchange.delivery.models import OutboxEntry, OutboxEvent
from signals.models import Feedback, Signal
from signals.serialization import feedback_event, flag_event
from tests.conftest import assert_problem, make_member
from tests.feedback_support import react, sha_item, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(api_for, member_a, member_b, outsider, pilot):
    """One signal of A for everyone, one for the pilot group only."""
    owner = api_for(member_a)
    everyone, group_only = upload(
        owner,
        [sha_item("everyone"), sha_item("group only", audience="group:pilot")],
    )
    return {"owner": owner, "everyone": everyone, "group_only": group_only}


def test_a_recipient_records_a_reaction_and_the_owner_sees_the_totals(api_for, member_b, shared):
    b = api_for(member_b)
    response = react(b, shared["everyone"], "actioned", action_taken=["account_suspended"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["reaction"] == "actioned"
    assert body["action_taken"] == ["account_suspended"]
    assert body["created"] is True
    assert body["member"] == "globex"

    own = shared["owner"].get("/api/v1/signals").json()["signals"]
    totals = {s["id"]: s["feedback"] for s in own}
    assert totals[shared["everyone"]] == {"actioned": 1}
    assert totals[shared["group_only"]] == {}

    match = b.post(
        "/api/v1/match",
        {
            "purpose": "detection",
            "items": [{"type": "sha256", "value": sha_item("everyone")["value"]}],
        },
        format="json",
    ).json()
    assert match["results"][0]["matches"][0]["signals"][0]["feedback"] == {"actioned": 1}


def test_reacting_again_changes_the_current_reaction_instead_of_adding_one(
    api_for, member_b, shared
):
    b = api_for(member_b)
    react(b, shared["everyone"], "actioned", action_taken="content_removed", note="first")
    again = react(
        b,
        shared["everyone"],
        "actioned",
        action_taken=["reported_to_hotline", "account_terminated"],
        note="escalated",
    )
    assert again.status_code == 200
    assert again.json()["created"] is False
    rows = list(Feedback.objects.filter(signal_id=shared["everyone"]))
    assert len(rows) == 1
    assert rows[0].note == "escalated"
    assert rows[0].action_taken == "account_terminated,reported_to_hotline"


def test_actioned_and_not_actioned_replace_each_other(api_for, member_b, shared):
    b = api_for(member_b)
    react(b, shared["everyone"], "not_actioned")
    react(b, shared["everyone"], "seen")
    body = react(b, shared["everyone"], "actioned").json()
    assert body["replaced"] == ["not_actioned"]
    reactions = set(
        Feedback.objects.filter(signal_id=shared["everyone"]).values_list("reaction", flat=True)
    )
    assert reactions == {"seen", "actioned"}


def test_it_hides_group_signals_from_an_outsider_with_404(api_for, outsider, shared):
    response = react(api_for(outsider), shared["group_only"], "false_positive")
    assert_problem(response, 404)
    assert not Feedback.objects.exists()


def test_unknown_signal_answers_404(api_for, member_b, shared):
    assert_problem(react(api_for(member_b), 999_999, "seen"), 404)


def test_a_retracted_signal_can_no_longer_be_reacted_to(api_for, member_b, shared):
    shared["owner"].delete(
        f"/api/v1/signals/{shared['everyone']}", {"reason": "mistake"}, format="json"
    )
    assert_problem(react(api_for(member_b), shared["everyone"], "seen"), 404)


def test_a_token_without_feedback_write_gets_403(api_for, member_b, shared):
    client = api_for(member_b, scopes=["signals:read"])
    assert_problem(react(client, shared["everyone"], "seen"), 403)
    assert AuditEvent.objects.filter(action="api.refused", actor_member="globex").exists()


def test_no_token_gets_401(api_for, shared):
    assert_problem(react(api_for(), shared["everyone"], "seen"), 401)


def test_the_owner_cannot_react_to_its_own_signal(shared):
    body = assert_problem(react(shared["owner"], shared["everyone"], "helpful"), 422)
    assert "your own" in body["errors"][0]["detail"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"reaction": "loved_it"}, "reaction"),
        ({"reaction": "seen", "action_taken": "account_suspended"}, "action_taken"),
        ({"reaction": "actioned", "action_taken": "burned_it_down"}, "action_taken"),
        ({"reaction": "actioned", "note": "x" * 1001}, "note"),
        ({"reaction": "seen", "colour": "red"}, "colour"),
        ({"reaction": "seen", "purpose": "research"}, "purpose"),
    ],
)
def test_bad_feedback_is_422_and_writes_nothing(api_for, member_b, shared, payload, field):
    response = api_for(member_b).post(
        f"/api/v1/signals/{shared['everyone']}/feedback", payload, format="json"
    )
    body = assert_problem(response, 422)
    assert field in {e["field"] for e in body["errors"]}
    assert not Feedback.objects.exists()


def test_feedback_is_audited_and_queued_for_the_owner(api_for, member_b, shared):
    body = react(api_for(member_b), shared["everyone"], "helpful", note="good lead").json()
    event = AuditEvent.objects.get(action="feedback.create")
    assert event.actor_member == "globex"
    assert event.target == f"signal:{shared['everyone']}"
    assert event.owners == ["acme"]
    assert event.details["reaction"] == "helpful"
    assert event.details["category"] == "csea.grooming"
    assert "good lead" not in str(event.details)  # notes are digested, never logged
    entry = OutboxEntry.objects.get(event=OutboxEvent.FEEDBACK_CREATED)
    assert entry.feedback_id == body["id"]
    payload = feedback_event(entry.feedback_id, entry.seq_from)
    assert payload is not None
    assert payload["op"] == "feedback"
    assert payload["seq"] == entry.seq_from
    assert payload["feedback"]["reaction"] == "helpful"
    assert payload["feedback"]["note"] == "good lead"
    assert payload["signal"]["id"] == shared["everyone"]
    assert payload["signal"]["feedback"] == {"helpful": 1}


def test_an_anonymous_member_reacts_without_its_name(api_for, shared):
    shy = make_member("shy-platform")
    shy.attribution = "anonymous"
    shy.save()
    body = react(api_for(shy), shared["everyone"], "seen").json()
    assert body["member"] == "anonymous"


def test_disputes_from_enough_members_flag_the_signal_to_owner_and_admins(
    api_for, member_b, outsider, shared, settings
):
    settings.BEACON_DISPUTE_FLAG_THRESHOLD = 3
    settings.ADMINS = [("", "safety-team@beacon.example")]
    third = make_member("hooli")
    signal_id = shared["everyone"]

    react(api_for(member_b), signal_id, "false_positive")
    # The same member twice, with both disputing reactions, still counts once.
    react(api_for(member_b), signal_id, "disputed")
    react(api_for(outsider), signal_id, "disputed")
    assert Signal.objects.get(pk=signal_id).flagged_at is None
    mine = {s["id"]: s for s in shared["owner"].get("/api/v1/signals").json()["signals"]}
    assert mine[signal_id]["flagged"] is False

    react(api_for(third), signal_id, "false_positive")
    signal = Signal.objects.get(pk=signal_id)
    assert signal.flagged_at is not None
    assert signal.status == "active"  # flagged, never retracted or deleted by the exchange

    flag = AuditEvent.objects.get(action="signal.flag")
    assert flag.target == f"signal:{signal_id}"
    assert flag.details["disputing_members"] == 3
    assert flag.owners == ["acme"]
    mine = {s["id"]: s for s in shared["owner"].get("/api/v1/signals").json()["signals"]}
    assert mine[signal_id]["flagged"] is True
    assert mine[signal_id]["feedback"] == {"false_positive": 2, "disputed": 2}

    entry = OutboxEntry.objects.get(event=OutboxEvent.SIGNAL_FLAGGED)
    payload = flag_event(entry.feedback_id, entry.seq_from)
    assert payload is not None
    assert payload["op"] == "flag"
    assert payload["signal"]["flagged"] is True

    # A fourth dispute changes nothing further.
    react(api_for(make_member("pied-piper")), signal_id, "disputed")
    assert AuditEvent.objects.filter(action="signal.flag").count() == 1


def test_flagging_emails_the_administrators_after_commit(
    api_for, member_b, outsider, shared, settings, django_capture_on_commit_callbacks
):
    settings.BEACON_DISPUTE_FLAG_THRESHOLD = 2
    settings.ADMINS = [("", "safety-team@beacon.example")]
    react(api_for(member_b), shared["everyone"], "false_positive")
    with django_capture_on_commit_callbacks(execute=True):
        react(api_for(outsider), shared["everyone"], "false_positive")
    assert len(mail.outbox) == 1
    assert f"Signal {shared['everyone']} flagged" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["safety-team@beacon.example"]

"""Expiry and retraction: tombstones reach the members that received a signal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import User
from exchange.audit import Actor
from exchange.audit.models import AuditEvent
from exchange.delivery.models import OutboxEntry, OutboxEvent
from signals import tasks
from signals.lifecycle import signal_expire_due, signal_retract_as_admin
from signals.models import Signal
from tests.feedback_support import feed, sha_item, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def received(api_for, member_a, member_b):
    """Three signals of A that B has already pulled from its feed."""
    owner, reader = api_for(member_a), api_for(member_b)
    soon = (timezone.now() + timedelta(hours=1)).isoformat()
    ids = upload(
        owner,
        [
            sha_item("expires soon", expires_at=soon),
            sha_item("also expires soon", category="tfgbv.doxxing", expires_at=soon),
            sha_item("stays"),
        ],
    )
    events, cursor = feed(reader)
    assert {e["signal"]["id"] for e in events if e["op"] == "upsert"} == set(ids)
    return {"owner": owner, "reader": reader, "ids": ids, "cursor": cursor}


def test_the_category_default_expiry_applies_at_upload(received):
    stays = Signal.objects.get(pk=received["ids"][2])
    assert stays.expires_at is not None  # csea.grooming keeps signals 730 days by default
    assert (stays.expires_at - timezone.now()).days in (729, 730)


def test_expiry_marks_signals_expired_and_sends_tombstones(received):
    before = {s.pk: s.seq for s in Signal.objects.all()}
    later = timezone.now() + timedelta(hours=2)
    assert signal_expire_due(actor=Actor.system("tests"), now=later) == 2

    expired = Signal.objects.filter(status="expired")
    assert {s.pk for s in expired} == set(received["ids"][:2])
    for s in expired:
        assert s.seq > before[s.pk]

    events, _ = feed(received["reader"], received["cursor"])
    assert [(e["op"], e["signal"]["id"]) for e in events] == [
        ("delete", received["ids"][0]),
        ("delete", received["ids"][1]),
    ]
    assert events[0]["signal"]["status"] == "deleted"

    entry = OutboxEntry.objects.get(event=OutboxEvent.SIGNAL_EXPIRED)
    assert (entry.seq_from, entry.seq_to) == (
        min(s.seq for s in expired),
        max(s.seq for s in expired),
    )
    audit = AuditEvent.objects.get(action="signal.expire")
    assert audit.result_count == 2
    assert audit.owners == ["acme"]
    assert audit.details["by_category"] == {"csea.grooming": 1, "tfgbv.doxxing": 1}

    # The owner still sees its expired signals, with their status.
    own = {s["id"]: s["status"] for s in received["owner"].get("/api/v1/signals").json()["signals"]}
    assert own[received["ids"][0]] == "expired"

    # Running again finds nothing more to do.
    assert signal_expire_due(actor=Actor.system("tests"), now=later) == 0
    assert AuditEvent.objects.filter(action="signal.expire").count() == 1


def test_expiry_works_in_batches(received):
    later = timezone.now() + timedelta(hours=2)
    assert signal_expire_due(actor=Actor.system("tests"), now=later, batch_size=1) == 2
    assert AuditEvent.objects.filter(action="signal.expire").count() == 2
    assert OutboxEntry.objects.filter(event=OutboxEvent.SIGNAL_EXPIRED).count() == 2


def test_the_beat_task_expires_what_is_due_now(received):
    Signal.objects.filter(pk=received["ids"][0]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.expire_due.apply().get() == 1
    assert Signal.objects.get(pk=received["ids"][0]).status == "expired"
    assert AuditEvent.objects.get(action="signal.expire").actor == "system:expiry"


def test_an_expired_signal_uploaded_again_comes_back(received):
    later = timezone.now() + timedelta(hours=2)
    signal_expire_due(actor=Actor.system("tests"), now=later)
    upload(received["owner"], [sha_item("expires soon")])
    assert Signal.objects.get(pk=received["ids"][0]).status == "active"


def test_an_exchange_admin_retracts_after_an_appeal_and_recipients_get_a_tombstone(
    received, exchange_admin
):
    signal = signal_retract_as_admin(
        user=exchange_admin, signal_id=received["ids"][2], reason="user appeal upheld"
    )
    assert signal.status == "retracted"
    assert signal.retract_reason == "user appeal upheld"
    event = AuditEvent.objects.get(action="signal.retract")
    assert event.actor == "user:alice"
    assert event.details["by"] == "exchange"
    assert event.details["reason"] == "user appeal upheld"
    assert event.owners == ["acme"]

    events, _ = feed(received["reader"], received["cursor"])
    assert [(e["op"], e["signal"]["id"]) for e in events] == [("delete", received["ids"][2])]
    assert OutboxEntry.objects.filter(event=OutboxEvent.SIGNAL_RETRACTED).count() == 1


def test_only_exchange_admins_retract_other_members_signals(received):
    analyst = User.objects.create_user(username="bob", password="correct horse battery")
    with pytest.raises(PermissionDenied):
        signal_retract_as_admin(user=analyst, signal_id=received["ids"][2], reason="no")
    assert Signal.objects.get(pk=received["ids"][2]).status == "active"


def test_the_owner_retracts_with_a_reason_that_the_audit_keeps(received):
    response = received["owner"].delete(
        f"/api/v1/signals/{received['ids'][1]}", {"reason": "false positive"}, format="json"
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="signal.retract")
    assert event.details["by"] == "owner"
    assert event.details["reason"] == "false positive"
    events, _ = feed(received["reader"], received["cursor"])
    assert [(e["op"], e["signal"]["id"]) for e in events] == [("delete", received["ids"][1])]


def test_a_member_that_never_received_a_signal_gets_no_tombstone(api_for, outsider, received):
    # The outsider never pulled the feed before: after expiry it learns nothing of the signals.
    signal_expire_due(actor=Actor.system("tests"), now=timezone.now() + timedelta(hours=2))
    events, _ = feed(api_for(outsider))
    assert [e["signal"]["id"] for e in events] == [received["ids"][2]]
    assert all(e["op"] == "upsert" for e in events)

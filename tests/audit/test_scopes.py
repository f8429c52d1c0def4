"""Who sees which audit events: auditors everything; a member its own queries and who
received its signals (when, by which channel), nothing else."""

from __future__ import annotations

import pytest

from client.auditverify import read_export, verify_export
from exchange import audit
from exchange.audit import Actor
from signals.models import Signal
from tests.audit.test_export import _export
from tests.conftest import assert_problem
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db


@pytest.fixture
def story(api_for, member_a, member_b, outsider):
    uploaded = api_for(member_a).post(
        "/api/v1/signals",
        {"items": [item("sha256", digest("img"))]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="audit-scopes-1",
    )
    assert uploaded.status_code in (200, 201, 207), uploaded.content
    signal = Signal.objects.get(owner=member_a)
    response = api_for(member_b).post(
        "/api/v1/match",
        {"purpose": "detection", "items": [{"type": "sha256", "value": digest("img")}]},
        format="json",
    )
    assert response.status_code == 200
    api_for(outsider).get("/api/v1/me")
    # B's query that disclosed A's signal and someone else's: A may learn only of its own.
    audit.record(
        actor=Actor(label="token:bcn_forbtest", member=member_b, client_ip="10.1.2.3"),
        action="signal.feed",
        purpose="detection",
        disclosed={member_b.slug: [signal.pk, 987654]},
        owners=[member_a.slug, outsider.slug],
        result_count=2,
    )
    return signal


@pytest.fixture
def key_file(tmp_path, api_for, auditor):
    path = tmp_path / "exchange.pem"
    path.write_text(api_for(auditor).get("/api/v1/audit/public-key").json()["public_key"])
    return path


def _events(path):
    return [r for kind, r in read_export(path) if kind == "event"]


def test_member_sees_own_queries_and_who_received_its_signals(
    story, api_for, member_a, member_b, outsider, key_file, tmp_path
):
    path = _export(api_for(member_a, scopes=["audit:read"]), tmp_path)
    events = _events(path)
    own = [e for e in events if e["actor_member"] == member_a.slug]
    others = [e for e in events if e["actor_member"] != member_a.slug]
    assert own and all(not e["redacted"] for e in own)
    assert any(e["action"] == "signal.submit" for e in own)
    assert others, "B's disclosures of A's signal are visible to A"
    assert {e["actor_member"] for e in others} == {member_b.slug}
    for event in others:
        assert event["redacted"]
        assert event["actor"] == event["client_ip"] == event["request_id"] == ""
        assert event["owners"] == [member_a.slug]
        assert event["disclosed"] == {member_b.slug: [story.pk]}
    assert {e["action"] for e in others} >= {"signal.match", "signal.feed"}
    assert all(outsider.slug not in (e["actor_member"], *e["owners"]) for e in events)
    result = verify_export(path, public_key=[key_file])
    assert result.ok, result.summary()
    # A redacted event whose content was altered is caught by the seal.
    text = path.read_text().replace(
        '"client_ip":"","details":{}', '"client_ip":"10.9.9.9","details":{}', 1
    )
    path.write_text(text)
    assert not verify_export(path, public_key=[key_file]).ok


def test_recipient_sees_its_queries_in_full(story, api_for, member_a, member_b, tmp_path):
    events = _events(_export(api_for(member_b, scopes=["audit:read"]), tmp_path))
    assert events and {e["actor_member"] for e in events} == {member_b.slug}
    feed = next(e for e in events if e["action"] == "signal.feed")
    assert not feed["redacted"] and feed["client_ip"] == "10.1.2.3"
    assert feed["disclosed"] == {member_b.slug: sorted([story.pk, 987654])}
    assert not any(e["action"] == "signal.submit" for e in events)


def test_member_may_not_ask_for_another_member(story, api_for, member_a, member_b):
    api = api_for(member_b, scopes=["audit:read"])
    assert_problem(api.get("/api/v1/audit/events", {"member": member_a.slug}), 403)
    assert api.get("/api/v1/audit/events", {"member": member_b.slug}).status_code == 200


def test_auditor_sees_everyone_and_can_narrow(
    story, api_for, auditor, member_a, outsider, key_file, tmp_path
):
    api = api_for(auditor, scopes=["audit:read"])
    events = _events(_export(api, tmp_path))
    assert {member_a.slug, outsider.slug} <= {e["actor_member"] for e in events}
    assert not any(e["redacted"] for e in events)
    path = _export(api, tmp_path, "csv", member=outsider.slug)
    narrowed = _events(path)
    assert narrowed
    assert all(outsider.slug == e["actor_member"] or outsider.slug in e["owners"] for e in narrowed)
    assert verify_export(path, public_key=[key_file]).ok

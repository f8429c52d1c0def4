from __future__ import annotations

import json
import logging

import pytest
from django.db import connection

from exchange.audit.models import AuditEvent
from signals.models import IdempotencyRecord, Indicator, Signal
from tests.conftest import assert_problem
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db


def test_it_creates_signals_and_answers_in_item_order(upload, member_a):
    items = [
        item("sha256"),
        item("email", digest("a@example.com"), "csea.sextortion"),
        item("keyword", "send me a pic first", "csea.grooming", lang="en"),
    ]
    response = upload(member_a, items)
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["updated"]) == (3, 0)
    assert [s["type"] for s in body["signals"]] == ["sha256", "email", "keyword"]
    assert all(s["status"] == "created" for s in body["signals"])
    assert Signal.objects.filter(owner=member_a).count() == 3


def test_uploading_again_updates_the_same_signal(upload, member_a):
    first = upload(member_a, [item(confidence=40)]).json()["signals"][0]
    second = upload(member_a, [item(confidence=90, severity="critical")]).json()
    assert (second["created"], second["updated"]) == (0, 1)
    assert second["signals"][0]["id"] == first["id"]
    signal = Signal.objects.get(pk=first["id"])
    assert (signal.confidence, signal.severity) == (90, "critical")


def test_two_members_on_one_indicator_share_it(upload, member_a, member_b):
    a = upload(member_a, [item()]).json()["signals"][0]
    b = upload(member_b, [item()]).json()["signals"][0]
    assert a["indicator_id"] == b["indicator_id"] and a["id"] != b["id"]
    assert Indicator.objects.count() == 1


def test_defaults_apply_to_optional_fields(upload, member_a):
    sid = upload(member_a, [item()]).json()["signals"][0]["id"]
    s = Signal.objects.get(pk=sid)
    assert (s.confidence, s.severity, s.tlp, s.audience) == (50, "medium", "amber", "all")


def test_category_default_lifetime_sets_expiry(upload, member_a):
    sid = upload(member_a, [item(category="csea.grooming")]).json()["signals"][0]["id"]
    assert Signal.objects.get(pk=sid).expires_at is not None


def test_any_invalid_item_rejects_the_whole_batch_listing_every_error(upload, member_a):
    items = [
        item(),
        item("email", "raw@example.com"),
        item(category="nope"),
        item(confidence=101),
        {"type": "nope", "value": "x", "category": "csea.csam"},
    ]
    body = assert_problem(upload(member_a, items), 422)
    bad = {(e["index"], e["field"]) for e in body["errors"]}
    assert {(1, "value"), (2, "category"), (3, "confidence"), (4, "type")} <= bad
    assert 0 not in {e["index"] for e in body["errors"]}
    assert Signal.objects.count() == 0 and Indicator.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("severity", "apocalyptic"),
        ("tlp", "purple"),
        ("tags", "not-a-list"),
        ("expires_at", "2001-01-01T00:00:00Z"),
        ("expires_at", "tomorrow"),
        ("audience", "everyone"),
        ("audience", "members:ghost"),
        ("external_id", 5),
        ("surprise", 1),
    ],
)
def test_each_bad_field_is_named(upload, member_a, field, value):
    body = assert_problem(upload(member_a, [item(**{field: value})]), 422)
    assert body["errors"][0]["field"] == field


def test_audience_naming_a_group_the_owner_is_not_in_is_rejected(upload, outsider, pilot):
    body = assert_problem(upload(outsider, [item(audience="group:pilot")]), 422)
    assert "sharing group" in body["errors"][0]["detail"]


def test_audience_group_works_for_a_group_member(upload, member_a, pilot):
    assert upload(member_a, [item(audience="group:pilot")]).status_code == 201


def test_a_batch_over_the_limit_is_413(upload, member_a, settings):
    settings.BEACON_MAX_BATCH_ITEMS = 3
    assert_problem(upload(member_a, [item(value=digest(str(i))) for i in range(4)]), 413)
    assert Signal.objects.count() == 0


def test_malformed_json_is_400(api_for, member_a):
    response = api_for(member_a).post(
        "/api/v1/signals", data="{oops", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_problem(response, 400)


def test_missing_idempotency_key_is_400(api_for, member_a):
    response = api_for(member_a).post("/api/v1/signals", {"items": [item()]}, format="json")
    assert assert_problem(response, 400)["type"].endswith("idempotency-key-required")


def test_ndjson_bodies_are_accepted_and_bad_lines_named(api_for, member_a):
    client = api_for(member_a)
    body = "\n".join(json.dumps(item(value=digest(str(i)))) for i in range(3)) + "\n"
    response = client.post(
        "/api/v1/signals",
        data=body,
        content_type="application/x-ndjson",
        HTTP_IDEMPOTENCY_KEY="nd1",
    )
    assert response.status_code == 201 and response.json()["created"] == 3
    bad = client.post(
        "/api/v1/signals",
        data='{"type": "sha256"}\n{nope\n',
        content_type="application/x-ndjson",
        HTTP_IDEMPOTENCY_KEY="nd2",
    )
    assert "line 2" in assert_problem(bad, 400)["detail"]


def test_write_scope_is_required(api_for, member_a):
    client = api_for(member_a, scopes=["signals:read"])
    assert_problem(
        client.post(
            "/api/v1/signals", {"items": [item()]}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        ),
        403,
    )


def test_same_key_and_body_replays_the_answer(upload, member_a):
    first = upload(member_a, [item()], key="same")
    again = upload(member_a, [item()], key="same")
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Signal.objects.count() == 1


def test_same_key_other_body_is_422(upload, member_a):
    upload(member_a, [item()], key="same")
    assert_problem(upload(member_a, [item(confidence=1)], key="same"), 422)


def test_a_key_in_flight_is_409(upload, member_a):
    IdempotencyRecord.objects.create(member=member_a, key="busy", body_hash="0" * 64)
    assert_problem(upload(member_a, [item()], key="busy"), 409)


def test_a_rejected_batch_frees_its_key(upload, member_a):
    assert upload(member_a, [item(confidence=500)], key="retry").status_code == 422
    assert upload(member_a, [item()], key="retry").status_code == 201


def test_keys_are_per_member(upload, member_a, member_b):
    assert upload(member_a, [item()], key="shared").status_code == 201
    response = upload(member_b, [item()], key="shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response


def test_the_upload_is_audited_with_a_digest_not_values(upload, member_a):
    value = digest("victim@example.com")
    upload(member_a, [item("email", value, "csea.sextortion")], HTTP_X_REQUEST_ID="upload-audit-1")
    event = AuditEvent.objects.get(request_id="upload-audit-1")
    assert event.action == "signal.submit" and event.result_count == 1
    assert value not in json.dumps(event.chained_body())


def test_no_raw_digest_reaches_the_database_or_logs(upload, member_a, caplog):
    value = digest("jane.doe@example.com")
    with caplog.at_level(logging.DEBUG):
        response = upload(
            member_a,
            [
                item("email", value, "csea.sextortion"),
                item("phone", digest("+15555550100"), "csea.sextortion"),
            ],
        )
        assert response.status_code == 201
    assert value not in caplog.text
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            assert value not in repr(cursor.fetchall()), table
    stored = Indicator.objects.get(type="email")
    assert stored.key_version == 1 and len(stored.value) == 64 and stored.value != value


def test_suspended_and_pending_members_cannot_upload(upload, member_a, issue_token, client):
    from accounts.services import member_suspend
    from tests.conftest import SYSTEM

    token = issue_token(member_a)
    member_suspend(member=member_a, actor=SYSTEM)
    response = client.post(
        "/api/v1/signals",
        {"items": [item()]},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert_problem(response, 401)

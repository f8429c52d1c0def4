"""The worked examples of docs/access-policies.md, one test each."""

from __future__ import annotations

import pytest

from accounts.models import Attestation, MemberAttestation, MemberKind
from accounts.services import member_activate, member_suspend
from signals.models import Category
from tests.conftest import SYSTEM, assert_problem, make_member
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db


def matched_ids(client, value, purpose="detection"):
    body = client.post(
        "/api/v1/match",
        {"purpose": purpose, "items": [{"type": "sha256", "value": value}]},
        format="json",
    ).json()
    return [s["id"] for m in body["results"][0]["matches"] for s in m["signals"]]


def test_example_1_suspension_refuses_the_next_request(api_for, outsider):
    client = api_for(outsider)
    assert client.get("/api/v1/me").status_code == 200
    member_suspend(member=outsider, actor=SYSTEM)
    assert_problem(client.get("/api/v1/me"), 401)
    member_activate(member=outsider, actor=SYSTEM)
    assert client.get("/api/v1/me").status_code == 200


def test_example_1b_without_the_agreement_a_member_reads_nothing(
    upload, api_for, member_a, outsider
):
    Category.objects.create(code="other.open", name="Open", required_attestations=[])
    client = api_for(outsider)
    sid = upload(member_a, [item(category="other.open")]).json()["signals"][0]["id"]
    assert matched_ids(client, item()["value"]) == [sid]
    MemberAttestation.objects.filter(member=outsider, kind=Attestation.AGREEMENT).delete()
    assert client.get("/api/v1/me").status_code == 200  # still active: only the policy refuses
    assert matched_ids(client, item()["value"]) == []
    assert_problem(client.get(f"/api/v1/signals/{sid}"), 404)
    assert client.get("/api/v1/feed?purpose=detection").json()["events"] == []


def test_example_2_retraction_hides_the_signal_from_others_not_the_owner(
    upload, api_for, member_a, member_b
):
    sid = upload(member_a, [item()]).json()["signals"][0]["id"]
    cursor = api_for(member_b).get("/api/v1/feed?purpose=detection").json()["next_cursor"]
    api_for(member_a).delete(
        f"/api/v1/signals/{sid}", {"reason": "user appeal upheld"}, format="json"
    )
    assert matched_ids(api_for(member_b), item()["value"]) == []
    assert_problem(api_for(member_b).get(f"/api/v1/signals/{sid}"), 404)
    events = (
        api_for(member_b).get(f"/api/v1/feed?purpose=detection&cursor={cursor}").json()["events"]
    )
    assert [(e["op"], e["signal"]["id"]) for e in events] == [("delete", sid)]
    assert api_for(member_a).get(f"/api/v1/signals/{sid}").json()["status"] == "retracted"


def test_example_3_audience_limits_who_matches(
    upload, api_for, member_a, member_b, outsider, pilot
):
    group_sid = upload(member_a, [item(value=digest("g"), audience="group:pilot")]).json()[
        "signals"
    ][0]["id"]
    named_sid = upload(member_a, [item(value=digest("n"), audience="members:initech")]).json()[
        "signals"
    ][0]["id"]
    assert matched_ids(api_for(member_b), digest("g")) == [group_sid]
    assert matched_ids(api_for(outsider), digest("g")) == []
    assert_problem(api_for(outsider).get(f"/api/v1/signals/{group_sid}"), 404)
    assert matched_ids(api_for(outsider), digest("n")) == [named_sid]
    assert matched_ids(api_for(member_b), digest("n")) == []


def test_example_4_categories_need_their_attestations(upload, api_for, member_a):
    partial = make_member("partial", attest=["agreement", "human_review"])
    upload(
        member_a,
        [
            item(value=digest("ncii"), category="tfgbv.ncii"),
            item(value=digest("csam"), category="csea.csam"),
        ],
    )
    assert matched_ids(api_for(partial), digest("ncii")) == []
    assert len(matched_ids(api_for(partial), digest("csam"))) == 1


def test_example_5_research_sees_aggregates_only(upload, api_for, member_a, member_b):
    upload(member_a, [item()])
    client = api_for(member_b)
    body = client.post(
        "/api/v1/match",
        {"purpose": "research", "items": [{"type": "sha256", "value": item()["value"]}]},
        format="json",
    ).json()
    assert set(body) == {"aggregate"} and body["aggregate"]["signals_matched"] == 1
    assert "value" not in str(body) and "id" not in body["aggregate"]
    assert_problem(client.get("/api/v1/feed?purpose=research"), 403)


def test_example_6_barred_kinds_never_receive(upload, api_for, member_a):
    ministry = make_member("ministry", kind=MemberKind.GOVERNMENT)
    upload(member_a, [item(audience="members:ministry")])
    assert matched_ids(api_for(ministry), item()["value"]) == []
